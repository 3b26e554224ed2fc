//! Interactive SQL shell and script runner that talks to an Eddy server over HTTP
