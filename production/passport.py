"""The part passport: a signed chain of the sha256 of everything a job was made from and into.

    script | model -> parameters -> [step] -> stl -> svg -> dfm_report -> [repaired] -> gcode
                                                                                    -> traveler

Each entry holds a kind, a name, the sha256 of the content, the chain hash of the entry before
it (GENESIS for the first) and its own chain hash,

    chain_hash = sha256(prev_chain_hash + kind + sha256)     (hex strings, concatenated, ASCII)

so changing, removing or reordering any entry changes every chain hash after it. Each entry is
signed with the server's Ed25519 key over `signed_message` (job number, place, chain hash);
anyone with the public key can check a passport without trusting our database.

Files are hashed as stored; inputs as follows: a script revision's script as UTF-8, a static
revision's uploaded model file, the canonical parameters and the DFM report as canonical JSON
(`json_sha256`). One writer: `passport_record` (the runner, inside the step's claim
transaction, so a step is recorded exactly once) and `passport_copy` (a remake after a
machine failure, which reuses the failed job's files). Readers: `passport_verify` (chain and
signatures: the passport page, the API, dispatch), `passport_check` (stored files and inputs
against their entries: the station), `gcode_refusal` (dispatch and a manual start).

Per copy: a job of quantity N makes its N copies from the same files, so copies 1..N share
the job's chain until plates give copies programs of their own.
"""

import functools
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import reverse

from microfactory.site_url import site_url
from production.models import Artifact, Job, PassportEntry

logger = logging.getLogger(__name__)

Kind = PassportEntry.Kind
GENESIS = "0" * 64  # the prev_chain_hash of a passport's first entry
SIGNED_PREFIX = "microfactory-passport/1"
# Kinds whose content is a file the job links (JobArtifact); the others are inputs.
FILE_KINDS = frozenset(Artifact.Kind.values)
CHUNK = 1 << 20


# --- the key --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_hex: str  # the raw 32-byte public key, hex: what the page and the API publish


def write_new_key(path: Path) -> str:
    """Write a new Ed25519 key to `path` as unencrypted PKCS#8 PEM (mode 0600) and return its
    public key (hex); FileExistsError if there is one already.

    Written aside, then hard-linked into place: a process reading `path` meanwhile sees no
    file or a whole key, and of processes generating at once the first link wins.
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    return public_hex(key.public_key())


def public_hex(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


@functools.cache
def _load_key(path: str, generate: bool) -> SigningKey:
    file = Path(path)
    if generate and not file.exists():
        try:
            write_new_key(file)
            logger.warning("generated a passport signing key in %s (MF_PASSPORT_KEY_FILE)", file)
        except FileExistsError:
            pass  # another process generated it first: use that one
    try:
        pem = file.read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(f"cannot read the passport key {file}: {error}") from error
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ImproperlyConfigured(
            f"{file} is not an unencrypted PEM private key ({error}); make one with "
            "`python manage.py passport_key --new PATH`"
        ) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{file} holds a {type(key).__name__}, not an Ed25519 key")
    return SigningKey(private=key, public_hex=public_hex(key.public_key()))


def signing_key() -> SigningKey:
    """The server's key (settings.PASSPORT_KEY_FILE), read once per process."""
    return _load_key(str(settings.PASSPORT_KEY_FILE), bool(settings.PASSPORT_KEY_GENERATED))


def trusted_keys() -> dict[str, str]:
    """Public keys whose signatures count: {hex: "current" | "retired"}."""
    keys = {
        key.strip().lower(): "retired"
        for key in settings.PASSPORT_RETIRED_PUBLIC_KEYS
        if key.strip()
    }
    keys[signing_key().public_hex] = "current"
    return keys


# --- the chain ------------------------------------------------------------------------------


def chain_hash(prev_chain_hash: str, kind: str, sha256: str) -> str:
    return hashlib.sha256(f"{prev_chain_hash}{kind}{sha256}".encode("ascii")).hexdigest()


def signed_message(job_number: str, seq: int, chain: str) -> bytes:
    """What an entry's signature covers: the chain hash, bound to its job and place."""
    return f"{SIGNED_PREFIX} {job_number} {seq} {chain}".encode("ascii")


def _normalised(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 5.0 and 5 are one value, however a database hands them back
    if isinstance(value, Mapping):
        return {str(k): _normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    return value


def json_sha256(value: Any) -> str:
    """sha256 of a JSON value in canonical form: keys sorted, no spaces, ASCII only, integral
    numbers written as integers. The same value read back from SQLite or PostgreSQL (whose
    JSONB reorders keys) hashes the same."""
    text = json.dumps(_normalised(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def passport_url(job: Job) -> str:
    """The absolute URL of the job's passport page: what the traveler's QR code encodes."""
    path = reverse("passport", kwargs={"job_id": job.pk, "token": job.passport_token})
    return f"{site_url()}{path}"


# --- writing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    sha256: str


def revision_entries(job: Job) -> list[Entry]:
    """The inputs a job's geometry is built from: its revision's script (or model file) and
    its canonical parameters."""
    line = job.line
    revision = line.revision
    label = f"{revision.family.name} rev {revision.number}"
    if revision.kind == revision.Kind.STATIC:
        source = Entry(
            Kind.MODEL, f"{label} model ({revision.model_format})", revision.model_sha256
        )
    else:
        digest = hashlib.sha256(revision.script.encode("utf-8")).hexdigest()
        source = Entry(Kind.SCRIPT, f"{label} script", digest)
    return [source, Entry(Kind.PARAMETERS, "canonical parameters", json_sha256(line.parameters))]


def passport_record(
    *, job: Job, step: str, files: Sequence[Entry], fields: Mapping[str, Any], now: datetime
) -> None:
    """Append what a pipeline step consumed and kept: the build's inputs, its files, the DFM
    report. Call in the transaction that keeps the step's result; a kind already recorded is
    not recorded again."""
    entries = revision_entries(job) if step == "geometry" else []
    entries.extend(files)
    if step == "validation" and fields.get("dfm_report") is not None:
        entries.append(Entry(Kind.DFM_REPORT, "DFM report", json_sha256(fields["dfm_report"])))
    _append(job, entries, now=now)


def passport_copy(*, source: Job, to: Job, now: datetime, leave_out: Iterable[str] = ()) -> None:
    """Start `to`'s passport with `source`'s entries (but `leave_out`): a remake that reuses
    the source's files. Signed anew, for the new job."""
    skip = set(leave_out)
    entries = [
        Entry(row.kind, row.name, row.sha256)
        for row in PassportEntry.objects.filter(job=source).order_by("seq")
        if row.kind not in skip
    ]
    _append(to, entries, now=now)


def _append(job: Job, entries: Sequence[Entry], *, now: datetime) -> None:
    if not entries:
        return
    key = signing_key()
    with transaction.atomic():
        # Appends to one job happen under its step's claim; the lock (and the unique places)
        # make a racing second writer fail rather than fork the chain.
        existing = list(PassportEntry.objects.select_for_update().filter(job=job).order_by("seq"))
        recorded = {row.kind for row in existing}
        prev = existing[-1].chain_hash if existing else GENESIS
        seq = len(existing)
        rows = []
        for entry in entries:
            if entry.kind in recorded:
                continue
            chain = chain_hash(prev, entry.kind, entry.sha256)
            rows.append(
                PassportEntry(
                    job=job,
                    seq=seq,
                    kind=entry.kind,
                    name=entry.name[:200],
                    sha256=entry.sha256,
                    prev_chain_hash=prev,
                    chain_hash=chain,
                    public_key=key.public_hex,
                    signature=key.private.sign(signed_message(job.number, seq, chain)).hex(),
                    created_at=now,
                )
            )
            recorded.add(entry.kind)
            prev, seq = chain, seq + 1
        PassportEntry.objects.bulk_create(rows)


# --- reading --------------------------------------------------------------------------------


OK, TAMPERED, MISSING = "ok", "tampered", "missing"


@dataclass(frozen=True)
class EntryView:
    """One entry as recorded, with what checking it found."""

    seq: int
    kind: str
    kind_label: str
    name: str
    sha256: str
    prev_chain_hash: str
    chain_hash: str
    public_key: str
    signature: str
    chain_ok: bool  # links to the entry before it, and its chain hash is right
    signed_by: str  # "current", "retired" or "unknown" key
    signature_ok: bool  # by a trusted key, and it verifies
    check: str = ""  # the content now (passport_check): OK, TAMPERED, MISSING; "" not checked
    actual_sha256: str = ""  # what the content hashes to now, when it differs

    @property
    def verified(self) -> bool:
        return self.chain_ok and self.signature_ok


@dataclass(frozen=True)
class Verification:
    job_number: str
    entries: tuple[EntryView, ...]
    public_key: str  # the current key: what an outsider checks signatures with

    @property
    def verified(self) -> bool:
        """The chain is whole and every entry is signed by a trusted key."""
        return bool(self.entries) and all(entry.verified for entry in self.entries)

    @property
    def problems(self) -> list[str]:
        found = []
        for entry in self.entries:
            if not entry.chain_ok:
                found.append(f"#{entry.seq} {entry.kind}: the chain is broken")
            if not entry.signature_ok:
                why = "unknown key" if entry.signed_by == "unknown" else "bad signature"
                found.append(f"#{entry.seq} {entry.kind}: {why}")
        return found

    @property
    def files_ok(self) -> bool:
        """Every entry was checked against its content now, and matched."""
        return bool(self.entries) and all(entry.check == OK for entry in self.entries)

    def entry(self, kind: str) -> EntryView | None:
        return next((entry for entry in self.entries if entry.kind == kind), None)


def _signature_ok(public_key: str, signature: str, message: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        key.verify(bytes.fromhex(signature), message)
    except (ValueError, InvalidSignature):
        return False
    return True


def passport_verify(job: Job) -> Verification:
    """The job's chain as recorded, each entry's link and signature checked."""
    trusted = trusted_keys()
    views = []
    prev = GENESIS
    for place, row in enumerate(PassportEntry.objects.filter(job=job).order_by("seq")):
        chain_ok = (
            row.seq == place
            and row.prev_chain_hash == prev
            and row.chain_hash == chain_hash(row.prev_chain_hash, row.kind, row.sha256)
        )
        signed_by = trusted.get(row.public_key, "unknown")
        message = signed_message(job.number, row.seq, row.chain_hash)
        views.append(
            EntryView(
                seq=row.seq,
                kind=row.kind,
                kind_label=row.get_kind_display(),
                name=row.name,
                sha256=row.sha256,
                prev_chain_hash=row.prev_chain_hash,
                chain_hash=row.chain_hash,
                public_key=row.public_key,
                signature=row.signature,
                chain_ok=chain_ok,
                signed_by=signed_by,
                signature_ok=signed_by != "unknown"
                and _signature_ok(row.public_key, row.signature, message),
            )
        )
        prev = row.chain_hash
    return Verification(job.number, tuple(views), signing_key().public_hex)


def _file_sha256(field: Any) -> str | None:
    """sha256 of a stored file, read in chunks; None when it is gone from storage."""
    if not field:
        return None
    digest = hashlib.sha256()
    try:
        with field.open("rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _actual_sha256(job: Job, kind: str, files: Mapping[str, Artifact]) -> str | None:
    """What the entry's content hashes to now; None when it is missing."""
    if kind in FILE_KINDS:
        artifact = files.get(kind)
        return None if artifact is None else _file_sha256(artifact.file)
    revision = job.line.revision
    if kind == Kind.SCRIPT:
        return hashlib.sha256(revision.script.encode("utf-8")).hexdigest()
    if kind == Kind.MODEL:
        return _file_sha256(revision.model_file)
    if kind == Kind.PARAMETERS:
        return json_sha256(job.line.parameters)
    if kind == Kind.DFM_REPORT:
        return None if job.dfm_report is None else json_sha256(job.dfm_report)
    return None


def passport_check(job: Job) -> Verification:
    """`passport_verify`, and each entry's content now against its hash: OK, TAMPERED (the
    stored file or input differs: changed or replaced) or MISSING. Reads every file."""
    verification = passport_verify(job)
    links = job.job_artifacts.select_related("artifact")
    files = {link.kind: link.artifact for link in links}
    checked = []
    for entry in verification.entries:
        actual = _actual_sha256(job, entry.kind, files)
        if actual is None:
            checked.append(_checked(entry, MISSING))
        elif actual == entry.sha256:
            checked.append(_checked(entry, OK))
        else:
            checked.append(_checked(entry, TAMPERED, actual))
    return Verification(verification.job_number, tuple(checked), verification.public_key)


def _checked(entry: EntryView, check: str, actual: str = "") -> EntryView:
    return replace(entry, check=check, actual_sha256=actual)


def gcode_refusal(job: Job, gcode: bytes) -> str | None:
    """Why these G-code bytes must not be started for the job, or None when they may: they
    hash as its passport's G-code entry, in a chain that verifies. A job made before
    passports (no entries) has nothing to compare with and may be started."""
    verification = passport_verify(job)
    if not verification.entries:
        logger.info("%s has no passport (made before passports): G-code not compared", job.number)
        return None
    entry = verification.entry(Kind.GCODE)
    if entry is None:
        return "its passport has no G-code entry"
    if not verification.verified:
        return "its passport does not verify (" + "; ".join(verification.problems) + ")"
    actual = hashlib.sha256(gcode).hexdigest()
    if actual != entry.sha256:
        return (
            f"the G-code (sha256 {actual[:16]}…) differs from its passport "
            f"({entry.sha256[:16]}…): the file was tampered with or replaced"
        )
    return None
