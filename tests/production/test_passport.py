"""The part passport: the pipeline chains and signs the sha256 of every input and file of a
job; the traveler's QR code opens the passport page; dispatch (and a manual start) refuses
G-code that differs from it; the station shows a changed or missing file as such."""

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.parameters import parameters_hash
from microfactory.errors import DomainError
from production import machines, passport, station
from production.checks import passport_key_configured
from production.lifecycle import By
from production.models import Artifact, Job, JobArtifact, Machine, PassportEntry
from tests.builders import make_machine, make_order, make_organisation, make_part, make_user
from tests.production.fake_printer import FakePrinter, recorded
from tests.production.pipeline.test_traveler import scan
from tests.production.test_runner import run_to_the_end
from tests.production.test_station import NOW, attach, make_station_job

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_KINDS = ["script", "parameters", "step", "stl", "svg", "dfm_report", "gcode", "traveler"]


@pytest.fixture(autouse=True)
def _static_without_manifest(settings) -> None:
    """Pages link site.css; tests run without collectstatic's manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def station_client(organisation) -> Client:
    client = Client()
    client.force_login(make_user("op", organisation=organisation, role="operator"))
    return client


@pytest.fixture
def printer():
    fake = FakePrinter()
    fake.script.on("POST", "/server/files/upload", recorded("upload.json", 201))
    fake.script.on("POST", "/printer/print/start", recorded("ok.json"))
    yield fake
    fake.close()


def networked(machine: Machine, printer: FakePrinter, monkeypatch, settings) -> Machine:
    """The machine driven by Moonraker: the fake printer on loopback."""
    settings.MF_CONNECTOR_BACKOFF_S = 0
    settings.MF_CONNECTOR_TIMEOUT_S = 0.5
    monkeypatch.setenv("VORON_KEY", "sekrit")
    Machine.objects.filter(pk=machine.pk).update(
        connector="moonraker",
        connector_url=printer.url,
        connector_secret_env="VORON_KEY",
        last_seen_at=timezone.now(),
    )
    return Machine.objects.get(pk=machine.pk)


def uploads(printer: FakePrinter) -> list[bytes]:
    return [seen.body for seen in printer.script.seen if seen.path.startswith("/server/files")]


def file_sha256(artifact: Artifact) -> str:
    with artifact.file.open("rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def verify_from_outside(entries: list[dict], job_number: str, public_key: str) -> None:
    """What anyone holding the public key does: recompute each chain hash from the entry
    before it and check each signature. Raises InvalidSignature or AssertionError."""
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    prev = "0" * 64
    for seq, entry in enumerate(entries):
        chain = hashlib.sha256(f"{prev}{entry['kind']}{entry['sha256']}".encode()).hexdigest()
        assert (entry["seq"], entry["prev_chain_hash"], entry["chain_hash"]) == (seq, prev, chain)
        message = f"microfactory-passport/1 {job_number} {seq} {chain}".encode()
        key.verify(bytes.fromhex(entry["signature"]), message)
        prev = chain


def with_passport(job: Job) -> Job:
    """Record the job's passport as the pipeline's steps would, from the files it links:
    for the jobs these tests make without running the pipeline."""
    links = {link.kind: link.artifact for link in job.job_artifacts.select_related("artifact")}

    def files(*kinds: str) -> list[passport.Entry]:
        return [passport.Entry(k, f"part.{k}", links[k].sha256) for k in kinds if k in links]

    report = {"dfm_report": job.dfm_report}
    for step, kinds, fields in (
        ("geometry", ("stl", "svg"), {}),
        ("validation", (), report),
        ("toolpath", ("gcode",), {}),
        ("traveler", ("traveler",), {}),
    ):
        passport.passport_record(job=job, step=step, files=files(*kinds), fields=fields, now=NOW)
    return job


def tamper(artifact: Artifact, extra: bytes = b"\nM104 S300 ; hotter than the passport\n") -> None:
    with open(artifact.file.path, "ab") as file:
        file.write(extra)


def checks_on_the_page(html: str) -> dict[str, str]:
    """{kind: check} of the station page's passport table."""
    found = {}
    for row in html.split('<tr data-kind="')[1:]:
        kind, _, rest = row.partition('"')
        found[kind] = rest.split('data-check="', 1)[1].split('"', 1)[0]
    return found


# --- the pipeline ---------------------------------------------------------------------------


def test_a_pipeline_run_chains_and_signs_every_input_and_file(user, station_client, tmp_path):
    make_part("block")
    make_machine()
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert job.status == Job.Status.ROUTED, job.reason

    entries = list(job.passport_entries.order_by("seq"))
    assert [e.kind for e in entries] == PIPELINE_KINDS
    files = {link.kind: link.artifact for link in job.job_artifacts.select_related("artifact")}
    revision = job.line.revision
    expected = {
        "script": hashlib.sha256(revision.script.encode()).hexdigest(),
        "parameters": parameters_hash(job.line.parameters),
        "dfm_report": passport.json_sha256(job.dfm_report),
        **{kind: file_sha256(artifact) for kind, artifact in files.items()},
    }
    assert {e.kind: e.sha256 for e in entries} == {kind: expected[kind] for kind in PIPELINE_KINDS}

    # The API gives what anyone needs to check it without us.
    api = APIClient()
    api.force_authenticate(user)
    body = api.get(f"/api/v1/jobs/{job.pk}/passport/").json()
    assert body["verified"] is True
    # On the address the API was asked at (the traveler, printed by the worker, on the setting's).
    assert body["url"] == "http://testserver" + urlsplit(passport.passport_url(job)).path
    assert [e["kind"] for e in body["entries"]] == PIPELINE_KINDS
    verify_from_outside(body["entries"], job.number, body["public_key"])

    # The traveler's QR code opens the passport: it scans back from the stored PDF, on the
    # site's address (MF_SITE_URL: the worker that printed it had no request to ask).
    printed_url = passport.passport_url(job)
    assert urlsplit(printed_url).path == urlsplit(body["url"]).path
    with files["traveler"].file.open("rb") as pdf:
        assert scan(pdf.read(), tmp_path) == {printed_url, job.number}
    assert station.job_traveler(job, now=timezone.now()).qr_url == printed_url

    # Anyone holding the URL sees the chain verified, and nothing about who ordered it.
    page = Client().get(urlsplit(body["url"]).path)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-verified="true"' in html
    assert all(e.sha256 in html and e.chain_hash in html for e in entries)
    assert body["public_key"] in html
    order = job.line.order
    for private in (order.organisation.name, user.username, order.number):
        assert private not in html
    assert "station-link" not in html  # not an operator

    # The station checks every file and input against it.
    html = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert checks_on_the_page(html) == dict.fromkeys(PIPELINE_KINDS, "ok")


def test_a_gcode_file_changed_on_disk_shows_as_tampered_and_is_not_sent(
    user, station_client, printer, monkeypatch, settings
):
    make_part("block")
    voron = networked(make_machine("voron"), printer, monkeypatch, settings)
    job = run_to_the_end(make_order(user=user).lines.get().jobs.get().pk)
    assert (job.status, job.machine_id) == (Job.Status.ROUTED, voron.pk), job.reason
    tamper(job.job_artifacts.get(kind="gcode").artifact)

    html = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert checks_on_the_page(html) == {
        **dict.fromkeys(PIPELINE_KINDS, "ok"),
        "gcode": "tampered",
    }
    assert "tampered or replaced" in html

    assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w") == []
    assert uploads(printer) == []
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.machine == voron  # its factory's station still shows it
    assert not Job.objects.filter(replaces=job).exists()  # a remake would reuse the same file
    with pytest.raises(DomainError, match="cannot be resumed: .*differs from its passport"):
        machines.job_resume(job_id=job.pk, now=timezone.now(), actor="op")
    assert "differs from its passport" in job.reason
    assert "tampered with or replaced" in job.reason
    event = job.events.order_by("pk").last()
    assert (event.step, event.to_status, event.message) == ("dispatch", "failed", job.reason)
    voron.refresh_from_db()
    assert (voron.state, voron.current_job_id) == ("idle", None)  # the printer did nothing wrong
    assert job.reason in station_client.get(f"/station/jobs/{job.pk}/").content.decode()


# --- dispatch and the station, on jobs made without the pipeline ------------------------------


def routed_with_passport(user, machine: Machine) -> Job:
    job = with_passport(make_station_job(user=user, machine=machine, status=Job.Status.ROUTED))
    assert passport.passport_verify(job).verified
    return job


def test_gcode_that_matches_its_passport_is_sent(user, printer, monkeypatch, settings):
    voron = networked(make_machine("voron"), printer, monkeypatch, settings)
    job = routed_with_passport(user, voron)
    assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w") == [job.pk]
    (body,) = uploads(printer)
    assert b"G28\nG1 Z5 F600\nM84\n" in body
    assert Job.objects.get(pk=job.pk).status == Job.Status.DISPATCHED


def test_a_gcode_replaced_by_another_file_is_not_sent(user, printer, monkeypatch, settings):
    """The job's link pointed at another program (another job's, say): the file is intact,
    but it is not the one this job's passport signed for."""
    voron = networked(make_machine("voron"), printer, monkeypatch, settings)
    job = routed_with_passport(user, voron)
    other = b"G28\nG1 Z50 F600\nM84\n"
    JobArtifact.objects.filter(job=job, kind="gcode").delete()
    attach(job, Artifact.Kind.GCODE, other, {})

    assert passport.passport_check(job).entry("gcode").check == passport.TAMPERED
    assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w") == []
    assert uploads(printer) == []
    assert "differs from its passport" in Job.objects.get(pk=job.pk).reason


def test_a_passport_entry_changed_in_the_database_breaks_the_chain_and_is_refused(
    user, printer, monkeypatch, settings
):
    """Someone who swaps the file and writes its hash into the passport row breaks the chain."""
    voron = networked(make_machine("voron"), printer, monkeypatch, settings)
    job = routed_with_passport(user, voron)
    gcode = job.job_artifacts.get(kind="gcode").artifact
    tamper(gcode)
    PassportEntry.objects.filter(job=job, kind="gcode").update(sha256=file_sha256(gcode))

    verification = passport.passport_verify(job)
    assert not verification.verified
    assert verification.problems == ["#5 gcode: the chain is broken"]
    assert machines.machine_dispatch(machine_id=voron.pk, now=timezone.now(), actor="w") == []
    assert uploads(printer) == []
    assert "its passport does not verify (#5 gcode" in Job.objects.get(pk=job.pk).reason


def test_a_chain_rebuilt_and_signed_with_another_key_does_not_verify(user, machine_key_pair):
    """Rewriting the whole chain needs our private key: one signed by any other key is
    marked as signed by an unknown key."""
    job = with_passport(make_station_job(user=user, machine=make_machine()))
    forger = machine_key_pair
    for row in job.passport_entries.order_by("seq"):
        row.public_key = forger.public_hex
        message = passport.signed_message(job.number, row.seq, row.chain_hash)
        row.signature = forger.private.sign(message).hex()
        row.save()
    verification = passport.passport_verify(job)
    assert not verification.verified
    assert {e.signed_by for e in verification.entries} == {"unknown"}
    assert passport.gcode_refusal(job, b"G28\nG1 Z5 F600\nM84\n").startswith(
        "its passport does not verify"
    )


@pytest.fixture
def machine_key_pair(tmp_path) -> passport.SigningKey:
    path = tmp_path / "other.pem"
    passport.write_new_key(path)
    return passport._load_key(str(path), False)


def test_a_manual_machine_is_not_started_on_changed_gcode(user, station_client, organisation):
    machine = make_machine()  # manual
    job = with_passport(make_station_job(user=user, machine=machine))
    operator = make_user("op2", organisation=organisation, role="operator")
    tamper(job.job_artifacts.get(kind="gcode").artifact)

    with pytest.raises(DomainError, match="not started: the G-code .* differs from its passport"):
        station.job_start(job_id=job.pk, operator=operator, now=NOW)
    response = station_client.post(f"/station/jobs/{job.pk}/start/", follow=True)
    assert "differs from its passport" in response.content.decode()
    assert Job.objects.get(pk=job.pk).status == Job.Status.DISPATCHED  # not started


def test_a_missing_file_shows_as_missing(user, station_client):
    job = with_passport(make_station_job(user=user, machine=make_machine()))
    os.remove(job.job_artifacts.get(kind="svg").artifact.file.path)
    html = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert checks_on_the_page(html) == {
        "script": "ok",
        "parameters": "ok",
        "stl": "ok",
        "svg": "missing",
        "dfm_report": "ok",
        "gcode": "ok",
    }


def test_a_job_made_before_passports_says_so_and_is_sent_as_before(user, station_client):
    job = make_station_job(user=user, machine=make_machine())
    assert passport.gcode_refusal(job, b"anything") is None
    html = station_client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert "made before passports were kept" in html


def test_the_dfm_report_hashes_the_same_after_the_database_round_trip(user):
    """JSON read back from the database (PostgreSQL's JSONB reorders keys and writes numbers
    its own way) hashes as the value the step kept."""
    job = make_station_job(user=user, machine=make_machine())
    report = {
        "zeta": [20.0, 20.5, 1e-05, 0.1 + 0.2],
        "alpha": {"volume_mm3": 1e20, "ok": True, "note": "ünïcode", "none": None},
    }
    Job.objects.filter(pk=job.pk).update(dfm_report=report)
    passport.passport_record(
        job=job, step="validation", files=[], fields={"dfm_report": report}, now=NOW
    )
    job = Job.objects.get(pk=job.pk)
    assert passport.passport_check(job).entry("dfm_report").check == passport.OK
    Job.objects.filter(pk=job.pk).update(dfm_report={**report, "zeta": [20.0]})
    assert passport.passport_check(Job.objects.get(pk=job.pk)).entry("dfm_report").check == (
        passport.TAMPERED
    )


# --- a remake, a second record ----------------------------------------------------------------


def test_a_remake_after_a_machine_failure_starts_with_the_failed_jobs_chain(user):
    machine = make_machine()
    job = make_station_job(user=user, machine=machine, status=Job.Status.RUNNING)
    attach(job, Artifact.Kind.TRAVELER, b"%PDF-1.7 traveler", {})
    with_passport(job)
    replacement = machines.job_fail_on_machine(
        job=job, by=By.SYSTEM, reason="MK4-1 went offline", now=NOW, actor="sweeper"
    )
    source = list(job.passport_entries.order_by("seq"))
    copied = list(replacement.passport_entries.order_by("seq"))
    assert [e.kind for e in copied] == [e.kind for e in source if e.kind != "traveler"]
    assert [e.chain_hash for e in copied] == [e.chain_hash for e in source[: len(copied)]]
    assert passport.passport_verify(replacement).verified  # signed anew, for the remake


def test_recording_a_step_twice_records_it_once(user):
    job = with_passport(make_station_job(user=user, machine=make_machine()))
    before = list(job.passport_entries.values_list("kind", "chain_hash"))
    with_passport(job)
    assert list(job.passport_entries.values_list("kind", "chain_hash")) == before


# --- the page, scanning, the API ----------------------------------------------------------


def test_the_passport_page_needs_its_token_and_lists_each_copy(user, station_client):
    job = with_passport(make_station_job(user=user, machine=make_machine(), quantity=3))
    path = urlsplit(passport.passport_url(job)).path
    anonymous = Client()
    page = anonymous.get(path)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page["X-Robots-Tag"]
    html = page.content.decode()
    assert "makes 3 copies" in html
    for copy in (1, 2, 3):
        assert f"{path}copies/{copy}/" in html
    copy_page = anonymous.get(f"{path}copies/2/")
    assert copy_page.status_code == 200
    assert "copy 2 of 3" in copy_page.content.decode()
    assert anonymous.get(f"{path}copies/4/").status_code == 404
    assert anonymous.get(f"{path}copies/0/").status_code == 404
    wrong = path.replace(job.passport_token, "x" * len(job.passport_token))
    assert anonymous.get(wrong).status_code == 404
    assert anonymous.get(f"/passport/{job.pk + 1000}/{job.passport_token}/").status_code == 404
    assert anonymous.get(f"/passport/{'9' * 40}/{job.passport_token}/").status_code == 404
    # An operator who scans it is offered the job at the station.
    assert f'href="/station/jobs/{job.pk}/"' in station_client.get(path).content.decode()


def test_every_job_gets_its_own_unguessable_token(user):
    make_part("block")
    tokens = [make_order(user=user).lines.get().jobs.get().passport_token for _ in range(6)]
    assert len(set(tokens)) == len(tokens) == 6
    assert all(len(token) >= 22 for token in tokens)  # 16 random bytes


def test_the_migration_gives_each_existing_job_a_token_of_its_own(user):
    from django.apps import apps

    migration = importlib.import_module("production.migrations.0014_job_passport_token_and_entries")
    make_part("block")
    for _ in range(3):
        make_order(user=user)
    Job.objects.update(passport_token="")  # as AddField leaves the rows it adds the column to
    migration.give_each_job_its_own_token(apps, None)
    tokens = list(Job.objects.values_list("passport_token", flat=True))
    assert len(set(tokens)) == 3 and "" not in tokens


def test_scanning_the_passport_url_at_the_station_opens_the_job(user, station_client):
    job = make_station_job(user=user, machine=make_machine())
    response = station_client.get("/station/scan/", {"code": passport.passport_url(job)})
    assert response.status_code == 302
    assert response["Location"] == f"/station/jobs/{job.pk}/"


def test_the_api_shows_the_passport_only_to_the_ordering_organisation(user):
    job = with_passport(make_station_job(user=user, machine=make_machine()))
    rival = APIClient()
    rival.force_authenticate(make_user("rival", organisation=make_organisation("rival")))
    assert rival.get(f"/api/v1/jobs/{job.pk}/passport/").status_code == 404
    assert APIClient().get(f"/api/v1/jobs/{job.pk}/passport/").status_code in (401, 403)


# --- the key --------------------------------------------------------------------------------


def test_a_retired_key_still_verifies_after_a_rotation(user, settings, tmp_path):
    job = with_passport(make_station_job(user=user, machine=make_machine()))
    old = passport.signing_key().public_hex
    settings.PASSPORT_KEY_FILE = tmp_path / "new.pem"
    settings.PASSPORT_KEY_GENERATED = False
    new = passport.write_new_key(settings.PASSPORT_KEY_FILE)
    assert passport.signing_key().public_hex == new != old

    assert not passport.passport_verify(job).verified  # the old key is no longer trusted...
    settings.PASSPORT_RETIRED_PUBLIC_KEYS = [old]
    verification = passport.passport_verify(job)  # ...until it is listed as retired
    assert verification.verified
    assert {e.signed_by for e in verification.entries} == {"retired"}
    assert verification.public_key == new


def test_a_key_file_that_is_not_an_ed25519_private_key_refuses_to_load(tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ImproperlyConfigured, match="not an unencrypted PEM private key"):
        passport._load_key(str(garbage), False)
    p256 = tmp_path / "p256.pem"
    p256.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ImproperlyConfigured, match="not an Ed25519 key"):
        passport._load_key(str(p256), False)


def test_the_app_refuses_to_start_when_the_configured_key_file_is_missing(tmp_path):
    env = {
        **os.environ,
        "MF_VAR_DIR": str(tmp_path),
        "MF_PASSPORT_KEY_FILE": str(tmp_path / "nowhere.pem"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: MF_PASSPORT_KEY_FILE is" in result.stderr
    assert "openssl genpkey -algorithm ed25519" in result.stderr


def test_the_key_command_makes_a_new_key_and_never_overwrites_one(tmp_path, capsys):
    path = tmp_path / "keys" / "passport.pem"
    call_command("passport_key", "--new", str(path))
    public = capsys.readouterr().out.strip()
    assert len(public) == 64
    assert path.stat().st_mode & 0o777 == 0o600
    assert passport._load_key(str(path), False).public_hex == public
    with pytest.raises(Exception, match="a key is never overwritten"):
        call_command("passport_key", "--new", str(path))
    call_command("passport_key")
    assert capsys.readouterr().out.strip() == passport.signing_key().public_hex


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_a_key_made_with_openssl_as_the_docs_say_loads(tmp_path):
    path = tmp_path / "passport_ed25519.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True)
    assert len(passport._load_key(str(path), False).public_hex) == 64


def test_docker_mounts_the_key_where_the_production_environment_looks_for_it():
    env = (ROOT / "docker" / "production.env").read_text().splitlines()
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    (setting,) = [line for line in env if line.startswith("MF_PASSPORT_KEY_FILE=")]
    name = setting.removeprefix("MF_PASSPORT_KEY_FILE=/run/secrets/")
    assert f"\n  {name}:\n    # openssl genpkey" in compose  # the top-level secret
    assert f"  secrets:\n    - {name}\n" in compose  # mounted in every app container


def test_check_deploy_warns_when_the_key_was_generated_under_var(settings):
    settings.PASSPORT_KEY_GENERATED = True
    (warning,) = passport_key_configured(app_configs=None, databases=None)
    assert warning.id == "production.W001"
    settings.PASSPORT_KEY_GENERATED = False
    assert list(passport_key_configured(app_configs=None, databases=None)) == []


def test_processes_generating_the_key_at_once_all_use_the_first(tmp_path):
    """Web and workers started together: one key wins, every process reads that one."""
    path = tmp_path / "var" / "passport_ed25519.pem"
    code = (
        "import sys; from pathlib import Path; from production import passport;"
        "print(passport._load_key(sys.argv[1], True).public_hex)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "microfactory.settings"}
    setup = "import django; django.setup();"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", setup + code, str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    keys = {run.communicate(timeout=120)[0].strip() for run in runs}
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no file left aside
