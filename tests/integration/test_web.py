"""nf-web (issue 26): the web page, in a real headless Chromium (Debian's
chromium and chromium-driver, driven by Debian's python3-selenium), against
the real broker, every real worker and nf-ytsim; and its HTTP rules (token,
CSRF, Host, limits) over real HTTP.

  browser   submit through the form (a bad option's error next to its field),
            watch the bars move to completed without a reload, Cancel during
            discovery (cancelled, videos kept), Resume to completion, the
            outliers equal to the downloaded workbook's, every export
            downloaded and read back, the screenshots of the README
  security  a non-loopback bind without a token refused; with one, inside a
            network namespace the test makes: nothing without the token;
            the token asked for and the session cookie given (in the browser,
            on loopback); POSTs without the CSRF token, from another origin,
            too big or malformed refused; a foreign Host refused without a token
"""
import csv, glob, http.cookiejar, json, os, re, shutil, subprocess, sys, time, urllib.error, urllib.parse, urllib.request, uuid

from harness import BUILD, SRC, Cluster, Sim, check, check_sanitizer_logs, eq, run

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def have_browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        print("SKIP: no chromium / chromium-driver (scripts/deps.sh installs them)")
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        print("SKIP: no python3-selenium (scripts/deps.sh installs it)")
        return False
    return True


def start_web(c, port, extra=None):
    """nf-web on 127.0.0.1:PORT (or EXTRA's NF_WEB_BIND); waits for its line."""
    env = {"NF_WEB_BIND": f"127.0.0.1:{port}", **(extra or {})}
    log = os.path.join(c.logdir, f"web-{port}.log")
    start = os.path.getsize(log) if os.path.exists(log) else 0  # the log is appended to
    p = c.spawn([f"{BUILD}/tools/nf-web"], f"web-{port}.log", env)
    deadline = time.time() + 15
    while time.time() < deadline:
        with open(p.log) as f:
            f.seek(start)
            text = f.read()
        if "listening on" in text:
            return p
        check(p.poll() is None, "nf-web exited", text)
        time.sleep(0.05)
    raise AssertionError("nf-web did not start")


def browser(downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", "--lang=en-US"):
        o.add_argument(a)
    o.add_experimental_option("prefs", {"download.default_directory": downloads,
                                        "download.prompt_for_download": False,
                                        "safebrowsing.enabled": False})
    d = webdriver.Chrome(service=Service(DRIVER), options=o)
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    d.set_page_load_timeout(30)
    return d


def wait_for(fn, seconds, what, step=0.1):
    """FN's first true value within SECONDS (exceptions count as not yet)."""
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # the page is between two renders
            last = e
        time.sleep(step)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}" + (f" ({last!r})" if last else ""))


def text_of(d, css):
    from selenium.webdriver.common.by import By
    return d.find_element(By.CSS_SELECTOR, css).text


def status_of(d):
    from selenium.webdriver.common.by import By
    return d.find_element(By.CSS_SELECTOR, "#job .meta .badge").text


def fill_form(d, values):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    for key, value in values.items():
        el = d.find_element(By.ID, "f-" + key)
        if el.tag_name == "select":
            Select(el).select_by_value(value)
        else:
            el.clear()
            el.send_keys(value)


def downloaded(folder, suffix, seconds=30):
    def done():
        files = [f for f in glob.glob(os.path.join(folder, "*" + suffix))]
        partial = glob.glob(os.path.join(folder, "*.crdownload"))
        return files[0] if files and not partial else None
    return wait_for(done, seconds, "the download of a " + suffix)


def shots_dir(c):
    d = os.environ.get("NF_WEB_SHOTS") or os.path.join(c.logdir, "shots")
    os.makedirs(d, exist_ok=True)
    return d


def test_browser():
    if not have_browser():
        sys.exit(77)  # ctest: skipped (SKIP_RETURN_CODE)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    import openpyxl
    c = Cluster("web", 26900)
    dl = os.path.join(c.logdir, "downloads")
    shutil.rmtree(dl, ignore_errors=True)
    os.makedirs(dl)
    d = None
    try:
        # Latency makes a job take long enough to watch and to cancel.
        sim = Sim(c, 26905, "--catalog", "2000", "--latency-ms", "25")
        c.start_broker()
        c.real_pipeline(sim)
        start_web(c, 26906, {"NF_YOUTUBE_IMG_URL": f"http://127.0.0.1:{sim.port}"})
        base = "http://127.0.0.1:26906/"
        d = browser(dl)
        d.get(base + "#/new")
        wait_for(lambda: d.find_element(By.ID, "f-niche"), 10, "the form")
        # Every control has a label, and the keyboard reaches the skip link first.
        for el in d.find_elements(By.CSS_SELECTOR, "#new-job input, #new-job select"):
            labels = d.find_elements(By.CSS_SELECTOR, f'label[for="{el.get_attribute("id")}"]')
            check(len(labels) == 1 and labels[0].text.strip(), "a label for every field", el.get_attribute("id"))
        keys = {e.get_attribute("name") for e in d.find_elements(By.CSS_SELECTOR, "#new-job [name]")}
        for k in ("niche", "sub_niche", "count", "top_n", "since", "until", "region", "lang",
                  "format", "source", "priority", "translate", "min_views", "max_age_days", "order", "max_pages"):
            check(k in keys, "the form offers every nf-submit option", k, sorted(keys))
        from selenium.webdriver.common.action_chains import ActionChains
        d.refresh()
        wait_for(lambda: d.find_element(By.ID, "f-niche"), 10, "the form again")
        # From the header (a click on the brand), the keyboard's order: the
        # navigation, then the form's fields in reading order; back: the skip link.
        ActionChains(d).move_to_element(d.find_element(By.CLASS_NAME, "brand")).click().perform()
        order = []
        for _ in range(5):
            ActionChains(d).send_keys(Keys.TAB).perform()
            order.append(d.switch_to.active_element.get_attribute("id")
                         or d.switch_to.active_element.get_attribute("textContent").strip())
        eq(order, ["Jobs", "New job", "Operations", "f-niche", "f-sub_niche"], "the keyboard's order")
        for _ in range(5):
            ActionChains(d).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        eq(d.switch_to.active_element.get_attribute("textContent").strip(), "Skip to content",
           "the skip link first")

        # A bad option: the broker's message next to the field it names.
        fill_form(d, {"niche": "budget travel", "sub_niche": "solo female backpacking", "count": "0",
                      "region": "XX"})
        d.find_element(By.ID, "submit").click()
        wait_for(lambda: text_of(d, "#e-count"), 10, "the count field's error")
        check("1 to 10000" in text_of(d, "#e-count"), "the count error says the range", text_of(d, "#e-count"))
        check("ISO 3166" in text_of(d, "#e-region"), "the region error", text_of(d, "#e-region"))
        eq(d.find_element(By.ID, "f-count").get_attribute("aria-invalid"), "true", "count marked invalid")
        eq(c.query1("SELECT count(*) FROM nf_jobs"), 0, "nothing submitted")
        d.save_screenshot(os.path.join(c.logdir, "form-error.png"))

        # Corrected and submitted with the keyboard (Enter in a field).
        fill_form(d, {"count": "150", "region": "US", "top_n": "10"})
        d.find_element(By.ID, "f-niche").send_keys(Keys.ENTER)
        wait_for(lambda: re.search(r"#/job/(\d+)$", d.current_url), 10, "the job page")
        job = int(re.search(r"#/job/(\d+)$", d.current_url).group(1))
        d.execute_script("window.__nf_marker = 42")
        # The bars move, live: several distinct values, one of them between
        # the ends, and the job completes, all without a reload.
        seen = set()
        def progressed():
            v = d.find_element(By.ID, "bar-scrape").get_attribute("value")
            m = d.find_element(By.ID, "bar-scrape").get_attribute("max")
            seen.add((float(v), float(m)))
            return status_of(d) == "completed"
        wait_for(progressed, 240, "the job completed on the page", step=0.05)
        middle = [v for v, m in seen if 0 < v < m]
        check(len(seen) >= 3 and middle, "the scrape bar moved through the middle", sorted(seen))
        eq(d.execute_script("return window.__nf_marker"), 42, "no reload")
        eq(c.job_status(job), "completed", "the broker agrees")
        for name in ("discover", "scrape", "sanitize", "geo", "analyze", "architect", "export"):
            bar = d.find_element(By.ID, "bar-" + name)
            eq(bar.get_attribute("value"), bar.get_attribute("max"), f"the {name} bar is full")
        funnel = {li.get_attribute("data-state"): int(li.find_element(By.CLASS_NAME, "n").text.replace(",", ""))
                  for li in d.find_elements(By.CSS_SELECTOR, "#funnel li")}
        db = dict(c.query("SELECT state, count(*) FROM nf_videos WHERE job_id = %s GROUP BY 1", job))
        for state, n in funnel.items():
            eq(n, db.get(state, 0), f"the funnel's {state}")
        hist = [r.find_elements(By.TAG_NAME, "td")[2].text for r in d.find_elements(By.CSS_SELECTOR, "#history tbody tr")]
        eq(hist, [r[0] for r in c.query("SELECT to_status FROM nf_job_history WHERE job_id = %s ORDER BY id", job)],
           "the status history")
        reasons = {r.find_elements(By.TAG_NAME, "td")[0].text: int(r.find_elements(By.TAG_NAME, "td")[1].text)
                   for r in d.find_elements(By.CSS_SELECTOR, "#rejected tbody tr")}
        eq(reasons, dict(c.query("SELECT rejected_reason, count(*) FROM nf_videos WHERE job_id = %s AND "
                                 "state = 'REJECTED' GROUP BY 1", job)), "the rejection reasons")
        shots = shots_dir(c)
        d.save_screenshot(os.path.join(shots, "web-job.png"))

        # Outliers: ranks, titles and x median equal the workbook's.
        d.find_element(By.ID, "to-outliers").click()
        wait_for(lambda: d.find_elements(By.CSS_SELECTOR, "#outliers tbody tr.outlier"), 20, "the outliers table")
        rows = d.find_elements(By.CSS_SELECTOR, "#outliers tbody tr.outlier")
        page = [(int(r.find_element(By.CLASS_NAME, "rank").text), r.find_element(By.CSS_SELECTOR, ".title a").text,
                 r.find_element(By.CLASS_NAME, "score-outlier_x").text) for r in rows]
        links = [r.find_element(By.CSS_SELECTOR, ".title a").get_attribute("href") for r in rows]
        check(all(re.search(r"/watch\?v=[\w-]+$", u) for u in links), "titles link the videos", links)
        tip = d.find_element(By.ID, "col-outlier_x").get_attribute("title")
        check("baseline" in tip, "x median explained on hover", tip)
        for k in ("multiplier", "views_per_sub", "velocity", "engagement", "quality", "composite"):
            check(d.find_element(By.ID, "col-" + k).get_attribute("title"), "a hover explanation", k)
        imgs = d.find_elements(By.CSS_SELECTOR, "#outliers img.thumb")
        eq(len(imgs), len(rows), "a thumbnail a row")
        wait_for(lambda: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) == 320 for i in imgs),
                 20, "the thumbnails loaded (from the simulator)")
        details = d.find_element(By.CSS_SELECTOR, "#outliers details.ideas")
        details.find_element(By.TAG_NAME, "summary").click()
        check("Hook" in details.text and "Outline" in details.text, "the AI content expands", details.text[:200])
        # The ideas' cell spans the wide table; their lines must wrap inside
        # the window, not run on under the score columns.
        edge = d.execute_script("const r = arguments[0].getBoundingClientRect();"
                                "return [r.left, r.right, document.documentElement.clientWidth];", details)
        check(edge[0] >= 0 and edge[1] <= edge[2], "the ideas fit the window's width", edge)
        eq(len(d.find_elements(By.TAG_NAME, "script")), 1, "hostile titles stay text: only our own script")
        d.save_screenshot(os.path.join(shots, "web-outliers.png"))
        for fmt in ("xlsx", "csv", "json"):
            d.find_element(By.ID, "dl-" + fmt).click()
            downloaded(dl, "." + fmt)
        wb = openpyxl.load_workbook(glob.glob(os.path.join(dl, "*.xlsx"))[0])
        ws = wb["Outliers"]
        head = [cell.value for cell in ws[1]]
        ri, ti, xi = head.index("Rank"), head.index("Title"), head.index("Outlier (x baseline)")
        book = [(int(r[ri]), r[ti], f"{r[xi]:.1f}x") for r in ws.iter_rows(min_row=2, values_only=True) if r[ri] is not None]
        eq(page, book, "the page's ranks, titles and x median equal the workbook's")
        with open(glob.glob(os.path.join(dl, "*.csv"))[0], newline="", encoding="utf-8") as f:
            rows_csv = list(csv.DictReader(f))
        eq([(int(r["rank"]), r["title"]) for r in rows_csv], [(r, t) for r, t, _ in page], "the csv download")
        with open(glob.glob(os.path.join(dl, "*.json"))[0], encoding="utf-8") as f:
            doc = json.load(f)
        eq([(o["rank"], o["title"], f"{o['outlier_x']:.1f}x") for o in doc["outliers"]], page, "the json download")

        # Cancel during discovery: cancelled, the videos found so far kept.
        d.get(base + "#/new")
        wait_for(lambda: d.find_element(By.ID, "f-niche"), 10, "the form")
        fill_form(d, {"niche": "home espresso", "count": "400", "top_n": "5"})
        d.find_element(By.ID, "submit").click()
        wait_for(lambda: re.search(r"#/job/(\d+)$", d.current_url), 10, "the second job's page")
        job2 = int(re.search(r"#/job/(\d+)$", d.current_url).group(1))
        wait_for(lambda: status_of(d) == "running" and text_of(d, "#phase") == "discover"
                 and d.find_elements(By.ID, "btn-cancel"), 60, "discovery under way")
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job2), 0, "no videos yet")
        d.find_element(By.ID, "btn-cancel").click()
        wait_for(lambda: status_of(d) == "cancelled", 60, "cancelled on the page")
        # The discovery's answer was awaited: what it found is kept, nothing went on.
        kept = c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job2)
        check(kept > 0, "the videos the discovery found kept", kept)
        eq(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s AND state <> 'DISCOVERED'", job2), 0,
           "none scraped after the cancel")
        total = sum(int(li.find_element(By.CLASS_NAME, "n").text.replace(",", ""))
                    for li in d.find_elements(By.CSS_SELECTOR, "#funnel li"))
        eq(total, kept, "the page shows the kept videos")
        check(d.find_elements(By.ID, "btn-resume") and not d.find_elements(By.ID, "btn-cancel"),
              "Resume offered, Cancel not")
        d.find_element(By.ID, "btn-resume").click()
        wait_for(lambda: status_of(d) == "completed", 300, "the resumed job completed on the page", step=0.2)
        eq(c.job_status(job2), "completed", "the broker agrees")
        check(c.query1("SELECT count(*) FROM nf_videos WHERE job_id = %s", job2) >= kept, "nothing lost")
        eq(c.duplicate_transitions(), 0, "every transition once")
        hist = [r[0] for r in c.query("SELECT to_status FROM nf_job_history WHERE job_id = %s ORDER BY id", job2)]
        check("cancelled" in hist and hist[-1] == "completed", "cancelled, then completed", hist)

        # Jobs (filtered) and Operations.
        d.get(base + "#/jobs?status=completed")
        wait_for(lambda: len(d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == 2, 15, "two completed jobs listed")
        d.get(base + "#/ops")
        wait_for(lambda: d.find_elements(By.CSS_SELECTOR, '#services tr[data-service="scrape"]'), 15, "the services")
        row = d.find_element(By.CSS_SELECTOR, '#services tr[data-service="scrape"]').find_elements(By.TAG_NAME, "td")
        eq(row[1].text, "1", "one scraper")
        eq(text_of(d, "#db"), "up", "the database is up")
        # A phone's width: nothing wider than the screen but the tables' own scrollers.
        d.set_window_size(390, 844)
        for page_hash in ("#/jobs", f"#/job/{job}", f"#/job/{job}/outliers", "#/new", "#/ops"):
            d.get(base + page_hash)
            wait_for(lambda: "Loading" not in text_of(d, "main"), 15, "the page " + page_hash)
            w = d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            check(w[0] <= w[1] + 1, "readable at a phone's width", page_hash, w)
        d.save_screenshot(os.path.join(c.logdir, "phone-outliers.png"))
        check_sanitizer_logs(c.procs)
    finally:
        if d:
            d.quit()
        c.stop()


def fetch(method, url, body=None, headers=None, jar=None, timeout=10):
    """(status, headers, body bytes); a 3xx is returned, not followed."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    handlers = [NoRedirect()]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    opener = urllib.request.build_opener(*handlers)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_security():
    c = Cluster("web_sec", 26910)
    token = "t0ken-" + uuid.uuid4().hex
    tfile = os.path.join(c.logdir, "web-token")
    with open(tfile, "w") as f:
        f.write(token + "\n")
    os.chmod(tfile, 0o600)
    ns = "nfweb" + uuid.uuid4().hex[:6]
    d = None
    try:
        c.start_broker()
        c.worker("discover")
        # A non-loopback bind without a token: refused, saying why.
        p = subprocess.run([f"{BUILD}/tools/nf-web"], env=c.env({"NF_WEB_BIND": "0.0.0.0:26917"}),
                           capture_output=True, text=True, timeout=10)
        eq(p.returncode, 2, "a non-loopback bind without a token")
        check("NF_WEB_TOKEN" in p.stderr, "the refusal names the setting", p.stderr)
        p = subprocess.run([f"{BUILD}/tools/nf-web"], env=c.env({"NF_WEB_TOKEN": "short"}),
                           capture_output=True, text=True, timeout=10)
        eq(p.returncode, 2, "a token under 16 characters")
        p = subprocess.run([f"{BUILD}/tools/nf-web", "--web-token", token], env=c.env(),
                           capture_output=True, text=True, timeout=10)
        eq(p.returncode, 2, "the token is never a flag")

        # Bound to every address of a network namespace of our own (only its
        # lo exists): nothing but the login page without the token.
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        env = c.env({"NF_WEB_BIND": "0.0.0.0:26917", "NF_WEB_TOKEN_FILE": tfile})
        log = open(os.path.join(c.logdir, "web-netns.log"), "wb")
        pw = subprocess.Popen(["ip", "netns", "exec", ns, f"{BUILD}/tools/nf-web"], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
        pw.log = log.name
        c.procs.append(pw)
        probe = r"""
import json, sys, time, urllib.request, urllib.error
def get(path, cookie=None):
    req = urllib.request.Request("http://127.0.0.1:26917" + path, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r: return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()
for _ in range(100):
    try: get("/app.css"); break
    except OSError: time.sleep(0.1)
out = {p: get(p) for p in ("/", "/api/jobs", "/api/options", "/api/jobs/1", "/api/events")}
out["forged"] = get("/api/jobs", "nf_session=99999999999.deadbeef")
print(json.dumps(out))
"""
        r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", probe], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 0, "the probe in the namespace ran", r.stderr)
        got = json.loads(r.stdout)
        eq(got["/"][0], 200, "the login page")
        check('name="token"' in got["/"][1] and "app.js" not in got["/"][1], "only the login form", got["/"][1][:300])
        for path in ("/api/jobs", "/api/options", "/api/jobs/1", "/api/events", "forged"):
            eq(got[path][0], 401, f"{path} without the token")
        check(token not in open(pw.log).read(), "the token is not logged")
        # The browser on loopback, with the token: asked for, then a session.
        web = start_web(c, 26916, {"NF_WEB_TOKEN_FILE": tfile})
        base = "http://127.0.0.1:26916"
        if have_browser():
            from selenium.webdriver.common.by import By
            d = browser(c.logdir)
            d.get(base + "/")
            d.find_element(By.ID, "token").send_keys("wrong-token-wrong-token")
            d.find_element(By.CSS_SELECTOR, "form button").click()
            wait_for(lambda: "not right" in text_of(d, "#login-error"), 10, "a wrong token refused")
            d.find_element(By.ID, "token").send_keys(token)
            d.find_element(By.CSS_SELECTOR, "form button").click()
            wait_for(lambda: d.find_elements(By.ID, "jobs-holder"), 10, "in, on the Jobs page")
            cookie = d.get_cookie("nf_session")
            check(cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", "an HttpOnly SameSite cookie", cookie)
            check(token not in cookie["value"], "the cookie is not the token")
        # Over HTTP: login, then the CSRF rules.
        jar = http.cookiejar.CookieJar()
        st, _, body = fetch("GET", base + "/", jar=jar)
        csrf_login = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()
        form = urllib.parse.urlencode({"csrf": csrf_login, "token": token}).encode()
        st, hd, _ = fetch("POST", base + "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}, jar)
        eq(st, 303, "login redirects")
        st, _, body = fetch("GET", base + "/api/session", jar=jar)
        eq(st, 200, "a session")
        csrf = json.loads(body)["csrf"]
        job = {"niche": "csrf test", "options": {"count": 5, "top_n": 5}}
        st, _, body = fetch("POST", base + "/api/jobs", job, {"Content-Type": "application/json"}, jar)
        eq(st, 403, "a POST without the CSRF token")
        check(json.loads(body)["csrf"], "says it is the CSRF token")
        st, _, _ = fetch("POST", base + "/api/jobs", job, {"Content-Type": "application/json", "X-CSRF-Token": "0" * 64}, jar)
        eq(st, 403, "a POST with a wrong CSRF token")
        st, _, _ = fetch("POST", base + "/api/jobs", job, {"Content-Type": "application/json", "X-CSRF-Token": csrf,
                                                          "Origin": "http://evil.example"}, jar)
        eq(st, 403, "a POST from another origin")
        eq(c.query1("SELECT count(*) FROM nf_jobs"), 0, "none of them submitted")
        st, _, body = fetch("POST", base + "/api/jobs", job, {"Content-Type": "application/json", "X-CSRF-Token": csrf,
                                                             "Origin": base}, jar)
        eq(st, 200, f"a POST with the token ({body!r})")
        jid = json.loads(body)["job_id"]
        st, _, _ = fetch("POST", base + f"/api/jobs/{jid}/cancel", {}, {"X-CSRF-Token": "x"}, jar)
        eq(st, 403, "cancel without the CSRF token")
        eq(c.query1("SELECT count(*) FROM nf_job_history WHERE job_id = %s AND to_status = 'cancelling'", jid), 0,
           "not cancelled")
        st, _, body = fetch("POST", base + "/api/jobs", b"{not json", {"X-CSRF-Token": csrf}, jar)
        eq(st, 400, "malformed JSON")
        st, _, body = fetch("POST", base + "/api/jobs", b"[1,2]", {"X-CSRF-Token": csrf}, jar)
        eq(st, 400, "a JSON array")
        st, _, body = fetch("POST", base + "/api/jobs", b'{"niche": "' + b"x" * 70000 + b'"}', {"X-CSRF-Token": csrf}, jar)
        eq(st, 413, "a body over 64 KiB")
        st, _, body = fetch("POST", base + "/api/jobs", b'{"niche": "\xff\xfe"}', {"X-CSRF-Token": csrf}, jar)
        eq(st, 400, "invalid UTF-8")
        hostile = {"niche": "<script>alert(1)</script>\u202e", "options": {"count": 5, "top_n": 5}}
        st, _, body = fetch("POST", base + "/api/jobs", hostile, {"X-CSRF-Token": csrf}, jar)
        check(st in (200, 422), "a hostile niche answered", st, body)
        st, _, body = fetch("GET", base + "/api/jobs?status=bogus", jar=jar)
        check(st == 400 and b"not a job status" in body, "a bad status filter refused", st, body)
        st, _, body = fetch("GET", base + "/api/jobs?status=pending", jar=jar)
        check(st == 200 and all(j["status"] == "pending" for j in json.loads(body)["jobs"]), "the status filter", body)
        st, hd, _ = fetch("GET", base + "/", jar=jar)
        check("script-src 'self'" in hd.get("Content-Security-Policy", ""), "a strict CSP", hd)
        eq(hd.get("X-Frame-Options"), "DENY", "no framing")
        st, hd, _ = fetch("POST", base + "/logout", {}, {"X-CSRF-Token": csrf}, jar)
        eq(st, 303, "logout")
        check("Max-Age=0" in hd.get("Set-Cookie", ""), "the cookie dropped", hd)
        # Without a token (loopback): only our own Host is answered.
        start_web(c, 26918)
        st, _, _ = fetch("GET", "http://127.0.0.1:26918/api/jobs", headers={"Host": "evil.example:26918"})
        eq(st, 421, "a foreign Host header (DNS rebinding)")
        st, _, _ = fetch("GET", "http://127.0.0.1:26918/api/jobs")
        eq(st, 200, "our own Host")
        st, _, _ = fetch("POST", "http://127.0.0.1:26918/api/jobs", job, {"Content-Type": "application/json"})
        eq(st, 403, "CSRF without a token too")
        # Peers that open live streams and never read them; more than one
        # address may hold (32): the rest are turned away, nf-web lives on.
        import socket
        def streams(n):
            out = []
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", 26918), timeout=5)
                s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:26918\r\n\r\n")
                out.append(s)
            return out
        socks = streams(20)
        st, _, _ = fetch("GET", "http://127.0.0.1:26918/api/options")
        eq(st, 200, "answers while 20 streams are open and unread")
        socks += streams(40)
        for s in socks:
            s.close()
        wait_for(lambda: fetch("GET", "http://127.0.0.1:26918/api/jobs")[0] == 200, 20, "answers after they go")
        check(web.poll() is None and pw.poll() is None, "nf-web still runs")
        check_sanitizer_logs([p for p in c.procs if hasattr(p, "log")])
    finally:
        if d:
            d.quit()
        c.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    run({"browser": test_browser, "security": test_security})
