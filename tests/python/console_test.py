"""Drives Eddy's web console in headless Chromium through Selenium (Debian's `chromium`
and `chromium-driver`, PyPI's `selenium`), as a person would use it.

Usage: python3 tests/python/console_test.py SERVER_URL SCREENSHOT_DIR PIPELINE_SQL

Runs the pipeline's statements from the editor, sees the streams and queries appear on
the overview, runs a push query on REVIEWS_CLEAN and sees rows arrive as reviews are
inserted, stops it, sees a statement error marked at its line, opens a query's page and
prints a topic. Writes a screenshot of each page to SCREENSHOT_DIR; exits non-zero (with
the reason) if anything is not as expected.
"""

import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL, SHOTS, PIPELINE = sys.argv[1:4]


def rest(statement):
    """Runs a statement through the REST API (not the console): the records' producer."""
    body = json.dumps({"ksql": statement, "streamsProperties": {}}).encode()
    request = urllib.request.Request(
        URL + "/ksql",
        data=body,
        headers={"Content-Type": "application/vnd.ksql.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def metric(series):
    """The value of a sample of the server's /metrics, 0 when it has none yet."""
    with urllib.request.urlopen(URL + "/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[1])
    return 0.0


def browser():
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


driver = browser()
wait = WebDriverWait(driver, 60)


def shot(name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def text_of(element_id):
    return driver.find_element(By.ID, element_id).text


def until(description, condition):
    try:
        return wait.until(lambda d: condition())
    except Exception as e:
        shot(f"failed-{description.replace(' ', '-')}")
        sys.exit(f"timed out waiting for {description}: {e}")


def go(page):
    driver.get(f"{URL}/#/{page}")
    until(f"the {page or 'overview'} page", lambda: driver.find_element(By.ID, page or "overview").is_displayed())


def type_sql(text):
    # Set as a paste would, then tell the page (which numbers the lines) it changed.
    driver.execute_script(
        "const a = document.getElementById('sql'); a.value = arguments[0];"
        "a.dispatchEvent(new Event('input'));",
        text,
    )


def table_text(table_id):
    return driver.find_element(By.ID, table_id).find_element(By.TAG_NAME, "tbody").text


def result_rows():
    return driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")


try:
    driver.get(URL + "/")
    until("the overview", lambda: driver.find_element(By.ID, "overview").is_displayed())
    shot("1-overview-empty")

    # The pipeline's statements, run from the editor.
    go("editor")
    with open(PIPELINE) as f:
        type_sql(f.read())
    driver.find_element(By.ID, "run").click()
    until("the last statement's answer", lambda: "CSAS_UNHAPPY_VIPS" in text_of("status"))
    if driver.find_element(By.ID, "error").is_displayed():
        sys.exit("the pipeline failed: " + text_of("error"))
    shot("2-editor-pipeline")

    # The streams and queries appear.
    go("")
    until(
        "the pipeline's queries",
        lambda: all(
            q in table_text("queries")
            for q in ("CSAS_REVIEWS_CLEAN_1", "CSAS_ENRICHED_REVIEWS_2", "CSAS_UNHAPPY_VIPS_3")
        ),
    )
    until("the streams", lambda: "REVIEWS_CLEAN" in table_text("streams"))
    until("the users table", lambda: "USERS" in table_text("tables"))
    if "RUNNING" not in table_text("queries"):
        sys.exit("no query shows RUNNING: " + table_text("queries"))
    shot("3-overview-pipeline")

    # A pull query on the users table.
    go("editor")
    rest("INSERT INTO users (userid, name, email, status) VALUES (1, 'Ada', 'ada@example.com', 'Platinum');")
    type_sql("SELECT NAME, STATUS FROM USERS WHERE USERID = 1;")

    def pulled():
        driver.find_element(By.ID, "run").click()
        # The table is read once it has caught up with its topic; ask again until then.
        try:
            WebDriverWait(driver, 3).until(lambda d: "Platinum" in table_text("results"))
            return True
        except Exception:
            return False

    until("the pull query's row", pulled)
    shot("4-editor-pull-query")

    # A push query whose rows arrive as reviews are inserted.
    go("editor")
    type_sql("SELECT ID, USERID, RATING, TEXT FROM REVIEWS_CLEAN EMIT CHANGES;")
    driver.find_element(By.ID, "run").click()
    until("the push query's header", lambda: "TEXT" in driver.find_element(By.ID, "results").text)
    for n in range(3):
        rest(f"INSERT INTO reviews (id, userid, rating, text) VALUES ({n}, 1, 4, 'live review {n}');")
        until(f"live review {n}", lambda: f"live review {n}" in table_text("results"))
    shot("5-editor-push-query")

    # Stopped: the server runs no push query any more, and new reviews do not arrive.
    driver.find_element(By.ID, "stop").click()
    until("the stop", lambda: "stopped" in text_of("status"))

    def push_queries():
        listed = rest("SHOW QUERIES;")[0]["queries"]
        return [q["id"] for q in listed if q["queryType"] == "PUSH"]

    until("the push query to end on the server", lambda: push_queries() == [])
    rows = len(result_rows())
    written = 'eddy_query_records_written_total{query_id="CSAS_REVIEWS_CLEAN_1"}'
    before = metric(written)
    rest("INSERT INTO reviews (id, userid, rating, text) VALUES (9, 1, 4, 'after the stop');")
    # Once the review is in REVIEWS_CLEAN, a running push query would have shown it.
    until("the review in REVIEWS_CLEAN", lambda: metric(written) > before)
    if "after the stop" in table_text("results") or len(result_rows()) != rows:
        sys.exit("rows arrived after the stop")
    shot("6-editor-stopped")

    # A statement error, marked at its line.
    type_sql("SHOW STREAMS;\nCREATE STREAM broken AS SELEC * FROM reviews;")
    driver.find_element(By.ID, "run").click()
    until("the error", lambda: driver.find_element(By.ID, "error").is_displayed())
    marked = driver.find_elements(By.CSS_SELECTOR, "#gutter .error-line")
    if [m.text for m in marked] != ["2"]:
        sys.exit(f"expected line 2 marked, got {[m.text for m in marked]}: {text_of('error')}")
    if not text_of("error").startswith("Line 2, column "):
        sys.exit("the error does not say where: " + text_of("error"))
    shot("7-editor-error")

    # A query's page: its SQL, plan, lag per partition and throughput.
    go("")
    until("the query link", lambda: driver.find_element(By.LINK_TEXT, "CSAS_REVIEWS_CLEAN_1"))
    driver.find_element(By.LINK_TEXT, "CSAS_REVIEWS_CLEAN_1").click()
    until("the query's SQL", lambda: "WHERE" in text_of("query-sql"))
    until("the query's lag", lambda: "reviews" in table_text("lag"))
    until("the query's plan", lambda: text_of("plan").strip() != "")
    until("the throughput chart", lambda: driver.find_elements(By.CSS_SELECTOR, "#chart polyline"))
    shot("8-query-page")

    # A topic printed live.
    go("topics")
    until("the topics", lambda: "reviews" in table_text("topic-list"))
    for row in driver.find_elements(By.CSS_SELECTOR, "#topic-list tbody tr"):
        if row.find_elements(By.TAG_NAME, "td")[0].text == "reviews":
            row.find_element(By.TAG_NAME, "button").click()
            break
    until("the printed records", lambda: "live review 0" in text_of("print"))
    shot("9-topics-print")
    driver.find_element(By.ID, "print-stop").click()
    print("console checked; screenshots in", SHOTS)
finally:
    driver.quit()
