"""Test support: runs a sample with its "system browser" replaced by a script that drives the emulator's
sign-in page over HTTP the way a person does in a browser: it opens the authorization URL, fills in the user
name and password, accepts (or, with SIGN_IN_ACTION=decline, cancels) the consent page, then submits the
auto-posting form_post page to the app's loopback listener. MSAL Python opens browsers through the standard
`webbrowser` module, so the driver is registered there as the preferred browser; nothing in MSAL is patched.

    SIGN_IN_USERNAME=... SIGN_IN_PASSWORD=... python _page_browser.py [interactive_sample.py [parameters.json]]

The driver prints one line per page it saw (`page: <title>`) on stderr, and stops at a page it does not know
(an error page: its text is printed).
"""
import html.parser
import os
import runpy
import sys
import threading
import urllib.parse
import webbrowser

import requests


class _Forms(html.parser.HTMLParser):
    """The page's title, text and forms (action, method, named inputs with their values)."""

    def __init__(self):
        super().__init__()
        self.title, self.text, self.forms, self._in_title = "", [], [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif data.strip():
            self.text.append(data.strip())


def _parse(page_html):
    p = _Forms()
    p.feed(page_html)
    return p


def _drive(auth_uri):
    session = requests.Session()
    resp = session.get(auth_uri)
    for _ in range(6):
        page = _parse(resp.text)
        print("page: %s" % page.title, file=sys.stderr)
        if not page.forms:
            print("stopped on: %s" % " ".join(page.text), file=sys.stderr)
            return
        form = page.forms[0]
        action = urllib.parse.urljoin(resp.url, form["action"])
        fields = dict(form["fields"])
        if "password" in fields or "username" in fields:
            fields["username"] = os.environ["SIGN_IN_USERNAME"]
            fields["password"] = os.environ["SIGN_IN_PASSWORD"]
        elif page.title.startswith("Permissions requested"):
            fields["action"] = os.environ.get("SIGN_IN_ACTION", "accept")
        if not action.startswith(("https://", "http://localhost", "http://127.0.0.1")):
            print("refusing to post to %s" % action, file=sys.stderr)
            return
        if page.title == "Working...":  # the form_post page: to the app's loopback listener
            requests.post(action, data=fields)
            return
        resp = session.post(action, data=fields)


class _PageBrowser(webbrowser.BaseBrowser):
    def open(self, url, new=0, autoraise=True):
        threading.Thread(target=_drive, args=(url,), daemon=True).start()
        return True


webbrowser.register("emulator-page", None, _PageBrowser("emulator-page"), preferred=True)
_sample = sys.argv[1] if len(sys.argv) > 1 else "interactive_sample.py"
sys.argv = [_sample] + sys.argv[2:]
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), _sample), run_name="__main__")
