"""The web UI in a real browser (Debian's chromium, headless, driven by selenium).

Arguments: server URL, CA path, admin password, a scratch directory, the axe-core script, and
optionally a directory for screenshots. Prints "ok" when every step saw what a user should see;
any other outcome is an exception naming the step.

Steps: sign in with the keyboard; create a project, a ServiceAccount and a role; grant the role;
create a token, read it from the page and use it with kubectl (and the downloaded kubeconfig);
delete it and see kubectl refused; a viewer's view (no create buttons, a readable 403); sign
out. Every page is checked by axe-core (no serious or critical violation), in light and dark,
and at 375 px wide for horizontal overflow; no request leaves the server's origin.
"""

import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

# PASSWORD is the admin password, or `sso:EMAIL:PASSWORD` for a person at the identity provider.
URL, CA, PASSWORD, SCRATCH, AXE = sys.argv[1:6]
SHOTS = sys.argv[6] if len(sys.argv) > 6 else None
PROJECT = "web"
DOWNLOADS = os.path.join(SCRATCH, "downloads")
UNAUTHORIZED = "error: You must be logged in to the server (Unauthorized)"


def browser():
    options = Options()
    options.binary_location = os.environ.get("KARGO_TEST_CHROMIUM", "/usr/bin/chromium")
    for arg in [
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        # The server's certificate is signed by its own CA, which chromium does not know.
        "--ignore-certificate-errors",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]:
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": DOWNLOADS, "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(os.environ.get("KARGO_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.implicitly_wait(5)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": DOWNLOADS}
    )
    return driver


with open(AXE, encoding="utf-8") as f:
    AXE_SOURCE = f.read()
CHECKED = set()


def check_page(driver, name):
    """axe-core in light and dark (no serious or critical violation); no overflow at 375 px."""
    key = (name, driver.current_url.split("?")[0])
    if key in CHECKED:
        return
    CHECKED.add(key)
    for scheme in ["light", "dark"]:
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )
        # Injected through the DevTools protocol, which the page's CSP does not govern.
        driver.execute_script(AXE_SOURCE)
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations));"
        )
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in result
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"{name} ({scheme}): axe-core found {bad}"
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    driver.set_window_size(375, 800)
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= 375, f"{name}: {width} px wide at a 375 px window"
    driver.set_window_size(1280, 900)


def shot(driver, name, width=1280, scheme="light"):
    if not SHOTS:
        return
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    height = 900 if width > 600 else 800
    driver.set_window_size(width, height)
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, min(full + 140, 2000)))
    driver.save_screenshot(os.path.join(SHOTS, f"ui-{name}.png"))
    driver.set_window_size(1280, 900)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def text(driver):
    return driver.find_element(By.TAG_NAME, "main").text


def notice(driver):
    found = driver.find_elements(By.CSS_SELECTOR, "main .notice")
    return found[0].text if found else ""


def navigating(driver, action):
    """Runs `action` (a click that loads a page) and waits until the new page replaced the old."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()

    def replaced(_):
        # Mid-navigation chromedriver may answer "Node with given id does not belong to the
        # document" (a WebDriverException) rather than a stale element: both mean it is gone.
        try:
            old.is_enabled()
            return False
        except WebDriverException:
            return True

    WebDriverWait(driver, 30).until(replaced)


def click(driver, xpath, confirm=None):
    """Clicks the button or link at `xpath` and waits for the next page; `confirm` is the
    question the page must ask first (accepted)."""

    def act():
        driver.find_element(By.XPATH, xpath).click()
        if confirm is not None:
            alert = driver.switch_to.alert
            assert alert.text == confirm, alert.text
            alert.accept()

    navigating(driver, act)


def go(driver, path, name):
    driver.get(URL + path)
    check_page(driver, name)


def submit(driver, form_selector, fields, button_text=None):
    form = driver.find_element(By.CSS_SELECTOR, form_selector)
    for field, value in fields.items():
        element = form.find_element(By.NAME, field)
        if element.tag_name == "select":
            element.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
        else:
            element.clear()
            element.send_keys(value)
    buttons = form.find_elements(By.CSS_SELECTOR, "button[type=submit]")
    if button_text:
        buttons = [b for b in buttons if b.text == button_text]
    navigating(driver, buttons[0].click)
    check_page(driver, f"after {form_selector}")


def kubectl(args, kubeconfig=None, token=None):
    command = ["kubectl"]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    else:
        command += ["--kubeconfig", "/dev/null", "--server", URL, "--certificate-authority", CA]
    if token:
        command += ["--token", token]
    env = dict(os.environ, HOME=SCRATCH)
    done = subprocess.run(command + args, capture_output=True, text=True, env=env, timeout=60)
    return done.returncode, done.stdout, done.stderr


def sign_in_with_keyboard(driver):
    """Tab from the top of the sign-in page to the password, type it, press Enter."""
    go(driver, "/", "sign-in")
    assert driver.current_url == URL + "/ui/login", driver.current_url
    shot(driver, "sign-in")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(8):
        if driver.switch_to.active_element.get_attribute("id") == "password":
            break
        driver.switch_to.active_element.send_keys(Keys.TAB)
    active = driver.switch_to.active_element
    assert active.get_attribute("id") == "password", "Tab never reached the password field"
    navigating(driver, lambda: active.send_keys(PASSWORD + Keys.ENTER))
    assert driver.current_url == URL + "/ui/", driver.current_url
    assert "Signed in as admin" in driver.find_element(By.TAG_NAME, "header").text


def new_token(driver, owner, name):
    """Creates a ServiceAccount token on the tokens page; its value, read from the page."""
    go(driver, f"/ui/projects/{PROJECT}/tokens", "tokens")
    submit(driver, "form.card:has(input[name=kind][value=account])", {"owner": owner, "name": name})
    main = text(driver)
    assert "you will not see it again" in main, main
    value = driver.find_element(By.ID, "token-value").get_attribute("value").strip()
    assert value.count(".") == 2, "the page shows a JWT"
    return value


def admin_flow(driver):
    sign_in_with_keyboard(driver)
    check_page(driver, "projects")
    submit(driver, "form[action='/ui/projects']", {"name": PROJECT})
    assert notice(driver) == f"Project {PROJECT} created.", notice(driver)
    click(driver, f"//a[text()='{PROJECT}']")
    check_page(driver, "accounts")
    for account in ["ci", "viewer"]:
        submit(driver, "form.card", {"name": account})
        assert notice(driver) == f"ServiceAccount {account} created.", notice(driver)
    shot(driver, "projects-accounts")

    # A role of our own, then grants: ci gets it and kargo-viewer, viewer gets kargo-viewer.
    go(driver, f"/ui/projects/{PROJECT}/roles", "roles")
    submit(
        driver,
        "form.card",
        {"name": "deployer", "description": "reads stages", "rules": "stages: get, list"},
    )
    assert notice(driver) == "Role deployer created.", notice(driver)
    check_page(driver, "role")
    assert "stages: get, list" in text(driver), text(driver)
    for role, account in [("deployer", "ci"), ("kargo-viewer", "ci"), ("kargo-viewer", "viewer")]:
        go(driver, f"/ui/projects/{PROJECT}/roles/{role}", "role")
        submit(driver, "form.card:has(select[name=account])", {"account": account})
        assert notice(driver) == f"Role {role} granted to ServiceAccount {account}.", notice(driver)
    assert f"ServiceAccount {PROJECT}/viewer" in text(driver), text(driver)
    go(driver, f"/ui/projects/{PROJECT}/roles/deployer", "role")
    shot(driver, "role")
    # Edit its permissions; grant it to people by a claim and revoke that.
    submit(driver, "form.card:has(textarea[name=rules])", {"rules": "stages: get, list, promote"})
    assert notice(driver) == "Role deployer saved.", notice(driver)
    assert "stages: get, list, promote" in text(driver), text(driver)
    assert f"ServiceAccount {PROJECT}/ci" in text(driver), "an edit keeps the holders"
    submit(driver, "form.card:has(input[name=claim])", {"claim": "groups", "values": "devops"})
    assert notice(driver) == "Role deployer granted to claim groups = devops.", notice(driver)
    assert "People whose groups is devops" in text(driver), text(driver)
    click(driver, "//button[@aria-label='Revoke from groups devops']")
    assert notice(driver) == "Role deployer revoked from claim groups = devops.", notice(driver)
    assert "People whose groups is devops" not in text(driver), text(driver)
    go(driver, f"/ui/projects/{PROJECT}/roles", "roles")
    assert "ci" in text(driver)
    shot(driver, "roles")

    # A token, from the page into kubectl.
    token = new_token(driver, "ci", "ci-token")
    driver.find_element(By.CSS_SELECTOR, "button[data-copy]").click()
    shot(driver, "token-created")
    code, out, err = kubectl(["get", "serviceaccounts", "-n", PROJECT, "-o", "name"], token=token)
    assert code == 0 and "serviceaccount/ci\n" in out, (code, out, err)
    code, out, err = kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], token=token)
    assert out == f"system:serviceaccount:{PROJECT}:ci", (code, out, err)
    # The same through the downloaded kubeconfig.
    driver.find_element(By.XPATH, "//button[text()='Download kubeconfig']").click()
    downloaded = os.path.join(DOWNLOADS, "ci-token.kubeconfig")
    deadline = time.time() + 10
    while not os.path.exists(downloaded) and time.time() < deadline:
        time.sleep(0.1)
    code, out, err = kubectl(["get", "serviceaccounts", "-o", "name"], kubeconfig=downloaded)
    assert code == 0 and "serviceaccount/viewer\n" in out, (code, out, err)

    # The token's row: active; disabled (refused) and enabled again; rotated (the old value
    # refused, the new one shown once and working).
    go(driver, f"/ui/projects/{PROJECT}/tokens", "tokens")
    row = driver.find_element(By.XPATH, "//tr[th[text()='ci-token']]").text
    assert "active" in row and "ServiceAccount token" in row, row
    click(driver, "//button[text()='Disable ci-token']")
    assert notice(driver) == "Token ci-token disabled.", notice(driver)
    assert "disabled" in driver.find_element(By.XPATH, "//tr[th[text()='ci-token']]").text
    code, out, err = kubectl(["get", "serviceaccounts", "-n", PROJECT], token=token)
    assert code == 1 and UNAUTHORIZED in err, (code, out, err)
    click(driver, "//button[text()='Enable ci-token']")
    assert notice(driver) == "Token ci-token enabled.", notice(driver)
    code, out, err = kubectl(["get", "serviceaccounts", "-n", PROJECT], token=token)
    assert code == 0, (code, out, err)
    click(driver, "//button[text()='Rotate ci-token']", "Rotate ci-token? Its current value stops working now.")
    assert "you will not see it again" in text(driver), text(driver)
    rotated = driver.find_element(By.ID, "token-value").get_attribute("value").strip()
    assert rotated != token
    code, out, err = kubectl(["get", "serviceaccounts", "-n", PROJECT], token=token)
    assert code == 1 and UNAUTHORIZED in err, (code, out, err)
    token = rotated
    code, out, err = kubectl(["get", "serviceaccounts", "-n", PROJECT], token=token)
    assert code == 0, (code, out, err)

    # Deleted (after the confirmation) and refused.
    go(driver, f"/ui/projects/{PROJECT}/tokens", "tokens")
    shot(driver, "tokens")
    shot(driver, "tokens-mobile", width=375)
    shot(driver, "tokens-dark", scheme="dark")
    click(driver, "//button[text()='Delete ci-token']", "Delete token ci-token? It stops working at once.")
    assert notice(driver) == "Token ci-token deleted.", notice(driver)
    code, out, err = kubectl(["get", "serviceaccounts", "-n", PROJECT], token=token)
    assert code == 1 and UNAUTHORIZED in err, (code, out, err)

    # Deleting an account first lists the tokens that go with it.
    new_token(driver, "viewer", "spare")
    viewer_token = new_token(driver, "viewer", "viewer-token")
    go(driver, f"/ui/projects/{PROJECT}/accounts/viewer/delete", "delete account")
    main = text(driver)
    assert "Its 2 token(s) stop working at once" in main and "spare\nviewer-token" in main, main
    shot(driver, "delete-account")
    go(driver, f"/ui/projects/{PROJECT}/accounts/ci/delete", "delete account")
    assert "It has no tokens." in text(driver), text(driver)
    click(driver, "//button[text()='Delete ci']")
    assert notice(driver) == "ServiceAccount ci and its tokens deleted.", notice(driver)

    # The system level: its accounts and roles, read only.
    go(driver, "/ui/system/accounts", "system accounts")
    assert "kargo-admin" in text(driver)
    assert not driver.find_elements(By.CSS_SELECTOR, "form.card"), "no creation at the system level"
    go(driver, "/ui/system/roles", "system roles")
    assert "kargo-project-creator" in text(driver), text(driver)
    go(driver, "/ui/system/tokens", "system tokens")
    assert driver.find_elements(By.CSS_SELECTOR, "form.card"), "system tokens can be created"
    return viewer_token


def viewer_flow(driver, token):
    go(driver, "/ui/login", "sign-in")
    submit(driver, "form[action='/ui/login/token']", {"token": token})
    header = driver.find_element(By.TAG_NAME, "header").text
    assert f"Signed in as system:serviceaccount:{PROJECT}:viewer" in header, header
    # Projects: a viewer of one project may not list them all; the page says so.
    main = text(driver)
    assert "You are not allowed to do this: " in main, main
    go(driver, f"/ui/projects/{PROJECT}/accounts", "viewer accounts")
    main = text(driver)
    assert "viewer" in main and "Managed by Kargo" in main, main
    assert not driver.find_elements(By.CSS_SELECTOR, "main form"), "a viewer sees no forms"
    assert not driver.find_elements(By.PARTIAL_LINK_TEXT, "Delete"), "a viewer sees no delete"
    shot(driver, "viewer")
    go(driver, f"/ui/projects/{PROJECT}/roles/kargo-viewer", "viewer role")
    assert not driver.find_elements(By.CSS_SELECTOR, "main form"), "a viewer cannot grant"
    go(driver, f"/ui/projects/{PROJECT}/tokens", "viewer tokens")
    alert = driver.find_element(By.CSS_SELECTOR, "main [role=alert]").text
    assert alert == "You are not allowed to do this: secrets is forbidden: list is not permitted", alert
    # Sign out: the session is gone.
    click(driver, "//button[text()='Sign out']")
    assert driver.current_url == URL + "/ui/login", driver.current_url
    driver.get(URL + f"/ui/projects/{PROJECT}/accounts")
    assert driver.current_url == URL + "/ui/login", driver.current_url


def requests_left_the_origin(driver):
    """Every URL the browser asked for, other than the server's own."""
    outside = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(URL + "/") and not url.startswith("data:"):
                outside.add(url)
    return outside


def sso_flow(driver, email, password):
    """A person signs in at the identity provider from the sign-in page's button."""
    go(driver, "/ui/login", "sign-in with SSO")
    click(driver, "//a[text()='Sign in with single sign-on']")
    assert not driver.current_url.startswith(URL), driver.current_url
    # The provider's own pages: its login form, then (maybe) its consent.
    forms = driver.find_elements(By.CSS_SELECTOR, "form[action$='/login']")
    assert forms, f"no login form at {driver.current_url}: {driver.page_source[:3000]}"
    form = forms[0]
    form.find_element(By.NAME, "login").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(password)
    navigating(driver, form.find_element(By.CSS_SELECTOR, "button").click)
    for _ in range(3):
        if driver.current_url.startswith(URL):
            break
        consent = driver.find_elements(By.CSS_SELECTOR, "form[action$='/confirm'] button")
        assert consent, f"stuck at {driver.current_url}: {driver.page_source[:500]}"
        navigating(driver, consent[0].click)
    assert driver.current_url == URL + "/ui/", driver.current_url
    header = driver.find_element(By.TAG_NAME, "header").text
    assert f"Signed in as {email}" in header, header
    check_page(driver, "projects (a person)")
    submit(driver, "form[action='/ui/projects']", {"name": "alices"})
    assert notice(driver) == "Project alices created.", notice(driver)
    click(driver, "//button[text()='Sign out']")
    assert driver.current_url == URL + "/ui/login", driver.current_url


def main():
    os.makedirs(DOWNLOADS, exist_ok=True)
    if PASSWORD.startswith("sso:"):
        _, email, password = PASSWORD.split(":", 2)
        person = browser()
        try:
            sso_flow(person, email, password)
        finally:
            person.quit()
        print("ok")
        return
    admin = browser()
    try:
        viewer_token = admin_flow(admin)
        outside = requests_left_the_origin(admin)
    finally:
        admin.quit()
    assert not outside, f"requests outside the server: {outside}"
    viewer = browser()
    try:
        viewer_flow(viewer, viewer_token)
        outside = requests_left_the_origin(viewer)
    finally:
        viewer.quit()
    assert not outside, f"requests outside the server: {outside}"
    print("ok")


main()
