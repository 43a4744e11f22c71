"""The console in a real browser (Debian's Chromium, driven by Playwright), against the
platform as ``agora up`` runs it: real processes, a real nats-server, the demo data.

Every wait is for a condition (Playwright's ``expect`` and ``wait_for_selector``, or a
service's own answer), with generous timeouts: the tests must pass on a busy machine.

They need /usr/bin/chromium (``apt-get install chromium``) and axe-core
(``npm ci --prefix .ci/axe``); without them they are skipped, unless
AGORA_TEST_BROWSER=required (as in CI), which turns a missing one into a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from agora_events.settings import LOCAL_ORGANISER_TOKEN

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / ".ci" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = os.environ.get("AGORA_CONSOLE_SCREENSHOTS")
"""A folder to save each page's screenshot in (docs/console/ is made this way)."""
ORGANISER = {"Authorization": f"Bearer {LOCAL_ORGANISER_TOKEN}"}
WAIT_MS = 60_000
SERVICE_LINE = re.compile(r"^(\w+)\s+(http://\S+)\s+docs")
T = TypeVar("T")


def _missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if not AXE.is_file():
        return f"{AXE} is missing (npm ci --prefix .ci/axe)"
    return None


if (reason := _missing()) is not None:
    if os.environ.get("AGORA_TEST_BROWSER") == "required":
        raise RuntimeError(f"the browser tests are required here, but {reason}")
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow


@dataclass
class Platform:
    process: subprocess.Popen[str]
    urls: dict[str, str]
    lines: list[str]

    def api(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[service], headers=ORGANISER, timeout=30)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """``agora up`` with the services the console talks to, and its demo data."""
    home = tmp_path_factory.mktemp("agora-up")
    command = [sys.executable, "-m", "agora_cli.main", "up", "--home", str(home)]
    for name in ("agenda", "registration", "declarations", "console"):
        command += ["--only", name]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    urls: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if match := SERVICE_LINE.match(line):
                urls[match.group(1)] = match.group(2)
            if line.startswith("ready."):
                break
        else:
            raise AssertionError("agora up ended before it was ready:\n" + "\n".join(lines))
        yield Platform(process, urls, lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def until(probe: Callable[[], T | None], what: str, within: float = 60.0) -> T:
    """A condition across processes, asked again until it holds (they share no sequence the
    test could wait on); fails naming it."""
    deadline = time.monotonic() + within
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        time.sleep(0.1)
    return value


def console_has_applied(platform: Platform, stream: str) -> bool | None:
    """Whether the console's projections on ``stream`` have caught up with its end."""
    ready = httpx.get(f"{platform.urls['console']}/readyz", timeout=30).json()
    lags = [p["lag"] for p in ready["checks"]["projections"] or [] if p["stream"] == stream]
    return True if lags and max(lags) == 0 else None


def screenshot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def no_serious_violations(page: Page) -> None:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate("() => axe.run(document)")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{page.url}:\n" + "\n".join(serious)


def sign_in(page: Page, platform: Platform, path: str) -> None:
    page.goto(f"{platform.urls['console']}{path}")
    page.get_by_label("Organiser token").fill(LOCAL_ORGANISER_TOKEN)
    page.get_by_role("button", name="Organiser sign-in").click()
    page.wait_for_url(f"**{path}")


# -- the programme ------------------------------------------------------------------------

DAY = "2025-06-24"


def published_day(platform: Platform) -> list[dict[str, Any]]:
    with platform.api("agenda") as agenda:
        answer = agenda.get("/editions/unpsf-2025/programme", params={"day": DAY})
    assert answer.status_code == 200, answer.text
    sessions: list[dict[str, Any]] = answer.json()["days"][0]["sessions"]
    return sessions


def test_the_programme_shows_the_real_2025_sessions_agenda_publishes(
    platform: Platform, page: Page
) -> None:
    sessions = published_day(platform)
    assert sessions, "the demo's 2025 programme has sessions on 24 June"

    page.goto(f"{platform.urls['console']}/programme?edition=unpsf-2025&day={DAY}")

    expect(page.get_by_role("heading", level=1)).to_contain_text("2025")
    expect(page.locator("nav.days a[aria-current=page]")).to_have_text("Tue 24 Jun")
    for session in sessions:
        expect(page.locator(f"#s-{session['session_id']} h3")).to_have_text(session["title"])
    screenshot(page, "programme")
    no_serious_violations(page)


def test_a_move_made_through_agendas_api_appears_on_an_open_page_without_reload(
    platform: Platform, page: Page
) -> None:
    first = published_day(platform)[0]
    page.goto(f"{platform.urls['console']}/programme?edition=unpsf-2025&day={DAY}")
    page.wait_for_selector("body[data-following=true]")
    page.evaluate("() => { window.notReloaded = true; }")
    block = page.locator(f"#s-{first['session_id']}")
    expect(block).to_be_visible()

    with platform.api("agenda") as agenda:
        moved = agenda.post(
            f"/sessions/{first['session_id']}/move",
            json={"starts_at": f"{DAY}T07:00:00+05:00"},
        )
        assert moved.status_code == 200, moved.text
        published = agenda.post(
            "/editions/unpsf-2025/versions", json={"label": "Moved in the browser test"}
        )
        assert published.status_code == 201, published.text

    expect(block.locator(".when time").first).to_have_text("07:00")
    expect(page.locator("#version")).to_contain_text("Moved in the browser test")
    assert page.evaluate("() => window.notReloaded") is True


def test_a_sessions_page_names_its_speakers_and_links_its_calendar(
    platform: Platform, page: Page
) -> None:
    with_people = next(
        (s for day in DAYS_OF_2025 for s in published(platform, day) if s.get("people")), None
    )
    assert with_people is not None, "the 2025 programme names people in some session"

    page.goto(f"{platform.urls['console']}/sessions/{with_people['session_id']}")

    expect(page.get_by_role("heading", level=1)).to_have_text(with_people["title"])
    for person in with_people["people"]:
        expect(page.locator("ul.people")).to_contain_text(person["name"])
    link = page.get_by_role("link", name="Add to calendar (.ics)")
    href = link.get_attribute("href")
    assert href == f"{platform.urls['agenda']}/sessions/{with_people['session_id']}/calendar.ics"
    calendar = httpx.get(href, timeout=30)
    assert calendar.status_code == 200 and "BEGIN:VCALENDAR" in calendar.text
    screenshot(page, "session")
    no_serious_violations(page)


DAYS_OF_2025 = ("2025-06-23", "2025-06-24", "2025-06-25")


def published(platform: Platform, day: str) -> list[dict[str, Any]]:
    with platform.api("agenda") as agenda:
        answer = agenda.get("/editions/unpsf-2025/programme", params={"day": day})
    days = answer.json()["days"] if answer.status_code == 200 else []
    return [s for d in days for s in d["sessions"]]


def test_the_programme_reads_in_french_on_a_phone(platform: Platform, phone: Page) -> None:
    phone.goto(f"{platform.urls['console']}/programme?edition=unpsf-2025&day={DAY}&lang=fr")

    expect(phone.locator("html")).to_have_attribute("lang", "fr")
    expect(phone.locator("nav.days a[aria-current=page]")).to_have_text("mar. 24 juin")
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, "the page itself never scrolls sideways (only the grid does)"
    no_serious_violations(phone)


# -- the declaration ------------------------------------------------------------------------


def approved_minister(platform: Platform, state: str) -> tuple[str, int]:
    """A minister of ``state`` registered and approved: their id, and the sequence of the
    approval (``?after=`` it reads registration's own write)."""
    with platform.api("registration") as registration:
        registered = registration.post(
            "/participants",
            json={
                "name": f"Minister of {state}",
                "email": f"minister-{uuid.uuid4().hex[:6]}@example.org",
                "category": "minister",
                "delegation": state,
            },
        )
        assert registered.status_code == 201, registered.text
        participant_id: str = registered.json()["ids"]["participant_id"]
        approved = registration.post(f"/participants/{participant_id}/approve")
        assert approved.status_code == 200, approved.text
    return participant_id, int(approved.json()["sequence"])


def test_a_signature_made_through_declarations_api_appears_in_the_open_status_table(
    platform: Platform, page: Page
) -> None:
    state = "CHL"
    minister, _ = approved_minister(platform, state)
    declarations = platform.api("declarations")
    declaration = declarations.get("/declarations/samarkand-2025").json()

    def knows_the_minister() -> bool | None:
        found = declarations.get(f"/declarations/samarkand-2025/states/{state}").json()
        people = {p["participant_id"]: p["status"] for p in found.get("delegation", [])}
        return True if people.get(minister) == "approved" else None

    until(knows_the_minister, "declarations learns of the approved minister")
    page.goto(f"{platform.urls['console']}/declaration")
    page.wait_for_selector("body[data-following=true]")
    expect(page.get_by_role("heading", level=1)).to_have_text(declaration["title"])
    expect(page.locator(f"tr[data-state={state}]")).to_have_count(0)

    signed = declarations.post(
        f"/declarations/samarkand-2025/states/{state}/signature",
        json={
            "participant_id": minister,
            "language": "en",
            "text_sha256": declaration["texts"][0]["sha256"],
        },
    )
    declarations.close()
    assert signed.status_code == 201, signed.text

    row = page.locator(f"tr[data-state={state}]")
    expect(row).to_contain_text("Chile")
    expect(row).to_contain_text(f"Minister of {state}")
    expect(page.locator("#counts")).to_contain_text("States signed:")
    screenshot(page, "declaration")
    no_serious_violations(page)


# -- the gate ---------------------------------------------------------------------------------


def test_the_gate_answers_a_withdrawn_participants_badge_in_red_with_the_reason(
    platform: Platform, phone: Page
) -> None:
    participant, _ = approved_minister(platform, "UZB")
    with platform.api("registration") as registration:
        withdrawn = registration.post(f"/participants/{participant}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
        found = registration.get(
            f"/participants/{participant}", params={"after": withdrawn.json()["sequence"]}
        )
        badge = found.json()["badge_number"]
    until(lambda: console_has_applied(platform, "REGISTRATION"), "the console has the withdrawal")
    sign_in(phone, platform, "/gate")

    phone.get_by_label("Badge number").fill(badge)
    phone.keyboard.press("Enter")

    answer = phone.locator("#answer .answer")
    expect(answer).to_have_class(re.compile(r"\brefused\b"))
    expect(answer.locator(".reason")).to_have_text("Participant withdrawn.")
    color = answer.evaluate("element => getComputedStyle(element).backgroundColor")
    assert color == "rgb(251, 230, 230)", "the refusal is shown on red"
    screenshot(phone, "gate-refused")
    no_serious_violations(phone)


def test_the_gate_checks_an_approved_participant_in_green_through_registration(
    platform: Platform, phone: Page
) -> None:
    participant, approval = approved_minister(platform, "KOR")
    with platform.api("registration") as registration:
        found = registration.get(f"/participants/{participant}", params={"after": approval})
        assert found.status_code == 200, found.text
        badge = found.json()["badge_number"]
    until(lambda: console_has_applied(platform, "REGISTRATION"), "the console has the approval")
    sign_in(phone, platform, "/gate")

    phone.get_by_label("Badge number").fill(badge)
    phone.get_by_role("button", name="Check in").click()

    answer = phone.locator("#answer .answer")
    expect(answer).to_have_class(re.compile(r"\bok\b"))
    expect(answer.locator(".reason")).to_have_text("Welcome, Minister of KOR: checked in.")
    with platform.api("registration") as registration:
        # The check-in's sequence stays in the console; registration's read model follows.
        until(
            lambda: registration.get(f"/participants/{participant}").json().get("inside") or None,
            "registration shows the participant inside",
        )
    screenshot(phone, "gate-admitted")
    no_serious_violations(phone)


def test_the_sign_in_page_has_no_serious_accessibility_violations(
    platform: Platform, page: Page
) -> None:
    page.goto(f"{platform.urls['console']}/sign-in")
    expect(page.get_by_label("Organiser token")).to_be_focused()
    no_serious_violations(page)


def test_agora_up_starts_the_console_and_prints_its_url(platform: Platform) -> None:
    console = platform.urls["console"]

    assert f"web console {console}   open it in a browser" in platform.lines
    assert httpx.get(f"{console}/readyz", timeout=30).json()["status"] == "ready"


# -- the organisers' pages --------------------------------------------------------------------


def test_an_organiser_approves_from_the_queue_and_sees_a_refusal_inline(
    platform: Platform, page: Page
) -> None:
    with platform.api("registration") as registration:
        registered = registration.post(
            "/participants",
            json={
                "name": "Queue Example",
                "email": f"queue-{uuid.uuid4().hex[:6]}@example.org",
                "category": "delegate",
                "delegation": "UZB",
            },
        )
        assert registered.status_code == 201, registered.text
    participant = registered.json()["ids"]["participant_id"]
    sign_in(page, platform, "/accreditation")
    row = page.locator(f"tr[data-participant='{participant}']")
    expect(row).to_contain_text("Queue Example")  # live: it arrives without a reload
    screenshot(page, "accreditation")
    no_serious_violations(page)

    row.get_by_role("button", name="Reject").click()
    expect(page.locator(f"tr[data-participant='{participant}'] .error")).to_have_text(
        "A rejection needs a reason."
    )
    page.locator(f"tr[data-participant='{participant}']").get_by_role(
        "button", name="Approve"
    ).click()
    expect(page.locator("#outcome")).to_have_text("Queue Example approved.")
    expect(page.locator(f"tr[data-participant='{participant}']")).to_have_count(0)

    # The page answering the decision stays live: the next registration arrives on it.
    page.wait_for_selector("body[data-following=true]")
    with platform.api("registration") as registration:
        later = registration.post(
            "/participants",
            json={
                "name": "Later Example",
                "email": f"later-{uuid.uuid4().hex[:6]}@example.org",
                "category": "delegate",
                "delegation": "KOR",
            },
        )
        assert later.status_code == 201, later.text
    expect(page.locator("#queue")).to_contain_text("Later Example")


def test_the_workshops_and_operations_pages_answer_an_organiser(
    platform: Platform, page: Page
) -> None:
    sign_in(page, platform, "/workshops")
    expect(page.locator("ul.places li").first).to_contain_text("places taken")
    screenshot(page, "workshops")
    no_serious_violations(page)

    page.goto(f"{platform.urls['console']}/operations")
    expect(page.locator("tr[data-stream=AGENDA]")).to_be_visible()
    expect(page.locator("#lags")).to_contain_text("participants")
    expect(page.locator("tr[data-service=registration]")).to_contain_text("ready")
    expect(page.locator("tr[data-service=registration]")).to_contain_text("agenda")  # reactor
    screenshot(page, "operations")
    no_serious_violations(page)
