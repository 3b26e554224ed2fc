//! Migration files: `V<six-digit version>__<description>.sql` in the migrations directory.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::error::ShellError;

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFile {
    /// Its version (1 or more).
    pub version: u32,
    /// Its description with `_` read as spaces, as ksqlDB shows it.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
}

impl MigrationFile {
    /// The file's text.
    ///
    /// # Errors
    ///
    /// [`ShellError::Script`] if it cannot be read.
    pub fn text(&self) -> Result<String, ShellError> {
        std::fs::read_to_string(&self.path).map_err(|source| ShellError::Script {
            path: self.path.clone(),
            source,
        })
    }

    /// The MD5 of its bytes, in hex: the checksum recorded when it is applied.
    ///
    /// # Errors
    ///
    /// [`ShellError::Script`] if it cannot be read.
    pub fn checksum(&self) -> Result<String, ShellError> {
        let bytes = std::fs::read(&self.path).map_err(|source| ShellError::Script {
            path: self.path.clone(),
            source,
        })?;
        Ok(format!("{:x}", Md5::digest(&bytes)))
    }
}

/// The name of the file of `version` with `description` (spaces become `_`).
pub fn file_name(version: u32, description: &str) -> String {
    format!(
        "V{version:06}__{}.sql",
        description.trim().replace(' ', "_")
    )
}

/// Reads a file name; `None` when it is not a migration file's name.
fn parse_name(name: &str) -> Option<(u32, String)> {
    let rest = name.strip_prefix('V')?.strip_suffix(".sql")?;
    let (digits, description) = rest.split_once("__")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version: u32 = digits.parse().ok()?;
    (version > 0 && !description.is_empty()).then(|| (version, description.replace('_', " ")))
}

/// The migration files in `dir`, by version.
///
/// # Errors
///
/// [`ShellError::Script`] if the directory cannot be read; [`ShellError::Usage`] for a
/// `.sql` file whose name does not follow the convention, or two files of one version.
pub fn load(dir: &Path) -> Result<Vec<MigrationFile>, ShellError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ShellError::Script {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<MigrationFile> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".sql") {
            continue;
        }
        let (version, description) = parse_name(name).ok_or_else(|| {
            ShellError::Usage(format!(
                "{}: a migration file is named V<six-digit version>__<description>.sql, \
                 with a version from 000001",
                path.display()
            ))
        })?;
        files.push(MigrationFile {
            version,
            name: description,
            path,
        });
    }
    files.sort_by_key(|f| f.version);
    if let Some(pair) = files.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(ShellError::Usage(format!(
            "two migration files have version {}: {} and {}",
            pair[0].version,
            pair[0].path.display(),
            pair[1].path.display()
        )));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_convention() {
        assert_eq!(file_name(2, "Add users"), "V000002__Add_users.sql");
        assert_eq!(
            parse_name("V000002__Add_users.sql"),
            Some((2, "Add users".into()))
        );
        assert_eq!(parse_name("V000000__zero.sql"), None);
        assert_eq!(parse_name("V2__short.sql"), None);
        assert_eq!(parse_name("V000002_one_underscore.sql"), None);
        assert_eq!(parse_name("V000002__.sql"), None);
    }

    #[test]
    fn loads_by_version_and_refuses_strays() -> Result<(), ShellError> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("V000002__b.sql"), "SELECT 2;")?;
        std::fs::write(dir.path().join("V000001__a.sql"), "SELECT 1;")?;
        std::fs::write(dir.path().join("notes.txt"), "not a migration")?;
        let files = load(dir.path())?;
        assert_eq!(
            files.iter().map(|f| f.version).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // MD5 of "SELECT 1;".
        assert_eq!(files[0].checksum()?, "71568061b2970a4b7c5160fe75356e10");
        std::fs::write(dir.path().join("V000002__again.sql"), "")?;
        assert!(load(dir.path()).is_err());
        std::fs::remove_file(dir.path().join("V000002__again.sql"))?;
        std::fs::write(dir.path().join("second.sql"), "")?;
        assert!(load(dir.path()).is_err());
        Ok(())
    }
}
