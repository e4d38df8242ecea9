"""Who wants what: organisations, teams, members and roles, orders and order lines, the
trail of their state changes, and the webhooks that tell an organisation's systems about them."""

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models

from catalog.models import Material, PartRevision, Process


class Organisation(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    # Where the organisation's orders go when they name no delivery site.
    default_delivery_site = models.ForeignKey(
        "production.Site",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="where its orders are delivered when they name no site",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    """A maintenance team inside an organisation; its orders above the threshold wait for an
    approver. No threshold: nothing needs approval."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    slug = models.SlugField()
    approval_threshold = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="orders quoted above this wait for an approver; empty: never",
    )
    # Team policy (orders.assets): an order for one of its critical assets that is down goes
    # ahead without waiting for an approver, whatever its price; the waiver is recorded.
    waive_approval_when_asset_down = models.BooleanField(
        default=False,
        help_text="orders for a critical asset that is down skip the approval threshold",
    )

    class Meta:
        ordering = ["organisation", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "slug"], name="unique_team_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.organisation.name} / {self.name}"


class Membership(models.Model):
    class Role(models.TextChoices):
        REQUESTER = "requester"
        APPROVER = "approver"
        CATALOG_ADMIN = "catalog_admin", "catalog admin"
        OPERATOR = "operator"
        MANAGER = "manager"

    # Roles that decide on orders waiting for approval.
    DECIDERS = frozenset({Role.APPROVER, Role.MANAGER})

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REQUESTER)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="memberships",
        help_text="the team this member orders for (its approval threshold applies)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_membership_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.role})"

    @property
    def can_approve(self) -> bool:
        return self.role in self.DECIDERS


class OrderQuerySet(models.QuerySet["Order"]):
    def for_user(self, user: object) -> "OrderQuerySet":
        """Orders of the organisations the user belongs to: the only way views read orders."""
        if not isinstance(user, get_user_model()) or not user.is_authenticated:
            return self.none()  # anonymous visitors (and anything else) see no orders
        return self.filter(organisation__memberships__user=user)


class Status(models.TextChoices):
    """The life of an order and of each of its lines."""

    DRAFT = "draft", "draft"
    SUBMITTED = "submitted", "submitted"
    AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
    APPROVED = "approved", "approved"
    IN_PRODUCTION = "in_production", "in production"
    # The built part priced more than the tolerance above an estimated quote: the requester
    # (or an approver) confirms the new price or declines it before any machine makes it.
    PRICE_CONFIRMATION = "price_confirmation", "awaiting price confirmation"
    COMPLETED = "completed", "completed"
    CANCELLED = "cancelled", "cancelled"
    REJECTED = "rejected", "rejected"


# The only moves an order (or a line) can make; anything else is refused (orders.services).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SUBMITTED, Status.CANCELLED}),
    Status.SUBMITTED: frozenset(
        {Status.AWAITING_APPROVAL, Status.APPROVED, Status.CANCELLED, Status.REJECTED}
    ),
    Status.AWAITING_APPROVAL: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
    Status.APPROVED: frozenset({Status.IN_PRODUCTION, Status.CANCELLED}),
    Status.IN_PRODUCTION: frozenset(
        {Status.COMPLETED, Status.CANCELLED, Status.REJECTED, Status.PRICE_CONFIRMATION}
    ),
    # Confirmed: back in production at the new price. Declined: the lines waiting are
    # cancelled (orders.services.order_price_decline) and the order goes back to production,
    # where it ends once its other lines do; a whole order can also be cancelled.
    Status.PRICE_CONFIRMATION: frozenset({Status.IN_PRODUCTION, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REJECTED: frozenset(),
}
FINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)


# The longest work-order reference a team can send (page and API alike).
WORK_ORDER_REF_MAX_LENGTH = 64


def order_number(pk: int) -> str:
    """The number people quote for an order: "O-000042"."""
    return f"O-{pk:06d}"


class Order(models.Model):
    Status = Status

    class Priority(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"
        URGENT = "urgent"

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="orders")
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    reference = models.CharField(max_length=100, blank=True, help_text="the customer's own ref")
    due_date = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    # Where the parts go: the site named at ordering, else the organisation's default. The
    # router counts the transit time to it (production.routing).
    delivery_site = models.ForeignKey(
        "production.Site", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    note = models.TextField(blank=True)
    # The sum of the lines' quoted prices when the order was placed; never recomputed.
    total_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    # A retried POST with the same key returns the first order instead of placing a second,
    # while the key is younger than ORDER_IDEMPOTENCY_KEY_TTL_H. NULL, not "", for no key:
    # NULLs never collide in the unique constraint.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)
    placed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the approver who approved or rejected it",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="why it was rejected or cancelled")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # Who confirmed (or declined) a built price above the estimated quote, and when; the
    # OrderEvent of that move records it too.
    price_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="who confirmed or declined the new price",
    )
    price_decided_at = models.DateTimeField(null=True, blank=True)
    # Dates and speed (orders.delivery): `due_date` is the needed-by date (none: as soon as
    # possible); an expedited order pays `expedite_fee` (in total_price) and goes to the
    # router as urgent. `promised_at` is when the parts were promised at placement, to compare
    # with when they were actually done; None when no machine took work then.
    expedite = models.BooleanField(default=False, help_text="expedited: urgent, for a fee")
    expedite_fee = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    promised_at = models.DateTimeField(
        null=True, blank=True, help_text="when the parts were promised at placement"
    )
    # The equipment the parts are for (orders.assets), and the team's own work-order number
    # (their CMMS's), which the API reads and writes too.
    asset = models.ForeignKey(
        "orders.Asset", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    work_order_ref = models.CharField(
        max_length=WORK_ORDER_REF_MAX_LENGTH,
        blank=True,
        help_text="the team's work-order reference (their CMMS's)",
    )
    # EUR at stake when it was placed for a critical asset that was down: the asset's
    # downtime cost per hour x the quoted lead time (orders.assets.downtime_stake); None
    # otherwise. It raises the order's routing priority while the asset stays down.
    downtime_stake = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"], name="unique_idempotency_key"
            ),
        ]
        indexes = [
            # The order list: an organisation's orders by status, newest first.
            models.Index(fields=["organisation", "status", "placed_at"], name="order_org_status"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return order_number(self.pk)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def stake_now(self) -> Decimal:
        """EUR at stake while its asset is still down (0 once it runs again, or none)."""
        asset = self.asset
        if self.downtime_stake is None or asset is None or not asset.is_critical_down:
            return Decimal(0)
        return self.downtime_stake

    @property
    def downtime_priority(self) -> str:
        """The priority its downtime stake earns now ("" for none): the router takes the
        higher of this and the priority the order was placed with (production.machines)."""
        return downtime_priority(self.stake_now)

    @property
    def downtime_text(self) -> str:
        """ "Line 3 packer down, 420 EUR/h, ~1,700 EUR at stake" for approvers and managers."""
        asset = self.asset
        if asset is None or self.downtime_stake is None:
            return ""
        state = "down" if asset.is_down else "running again"
        return (
            f"{asset.name} {state}, {asset.downtime_cost_per_hour:,.0f} {self.currency}/h, "
            f"~{self.downtime_stake:,.0f} {self.currency} at stake"
        )


class OrderLine(models.Model):
    Status = Status

    class PriceCheck(models.TextChoices):
        """An estimated line's price against its built part (orders.quoting.price_change)."""

        FIRM = "firm", "firm: quoted on built geometry"
        PENDING = "pending", "estimated: checked once the part is built"
        LOWERED = "lowered", "built cheaper: the lower price applies"
        KEPT = "kept", "built within the tolerance: the quoted price stands"
        TO_CONFIRM = "to_confirm", "built dearer: waiting for a confirmation"
        CONFIRMED = "confirmed", "built dearer: the new price was confirmed"
        DECLINED = "declined", "built dearer: the new price was declined"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    # PROTECT: a revision an order was placed on can never be deleted from under it.
    revision = models.ForeignKey(PartRevision, on_delete=models.PROTECT, related_name="lines")
    parameters = models.JSONField(help_text="canonical parameter values")
    parameters_hash = models.CharField(max_length=64)
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="lines")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # The quote the requester saw and accepted (orders.quoting.Quote as JSON). A firm quote's
    # price never changes; an estimated one is checked once on the built part (price_check):
    # a lower built price replaces it, a higher one only with a confirmation.
    quote = models.JSONField(default=dict, blank=True)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    price_check = models.CharField(
        max_length=12, choices=PriceCheck.choices, default=PriceCheck.FIRM
    )
    # The line priced again on its built part (orders.quoting.requote), once built.
    built_quote = models.JSONField(null=True, blank=True)
    quoted_price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="the price first quoted, when the price changed after the build",
    )
    price_checked_at = models.DateTimeField(null=True, blank=True)
    lead_time_s = models.PositiveIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # The process route (orders.routes): `process` + `material` is how the line is made, one of
    # the revision's allowed processes; its jobs go to a machine of that process. Chosen by
    # the route chooser (the due date met at the lowest cost, else the soonest) or by the
    # requester; `route_reason` says why, in the requester's words, and `route_options`
    # keeps every route that was quoted (process, material, price, ready time).
    process = models.CharField(max_length=20, choices=Process.choices, default=Process.FDM)
    route_reason = models.TextField(blank=True)
    route_options = models.JSONField(default=list, blank=True)
    route_chosen_by = models.CharField(
        max_length=10,
        blank=True,
        help_text='"chooser", "requester", or empty when the part has one process only',
    )

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return f"{self.order.number} line {self.pk}: {self.quantity} x {self.revision}"


class OrderEvent(models.Model):
    """One state change of an order or of one of its lines: who, when, from what to what."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    line = models.ForeignKey(
        OrderLine, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="user name, or 'system'")
    at = models.DateTimeField()
    reason = models.TextField(blank=True)
    # A reorder's first move names the order it repeats (orders.reorders.order_reorder).
    source_order = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reorder_events",
        help_text="the order this one reorders",
    )

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        what = f"line {self.line_id}" if self.line_id else "order"
        return f"{self.order}: {what} {self.from_status or '-'} -> {self.to_status}"


class Webhook(models.Model):
    """An address of the organisation's own system that is told about order and job changes.

    Each POST carries `X-Microfactory-Signature: sha256=<hex>`, the HMAC-SHA256 of
    "<timestamp>.<body>" under `secret`, and the timestamp in `X-Microfactory-Timestamp`.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="webhooks"
    )
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="shared secret for the HMAC signature")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation", "pk"]

    def __str__(self) -> str:
        return f"{self.organisation.slug} -> {self.url}"


class WebhookDelivery(models.Model):
    """One event for one webhook, and every attempt to deliver it (the delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # [{"at": iso time, "status_code": int | null, "error": str, "duration_ms": int}, ...]
    log = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook.url} ({self.status})"


# --- assets: the equipment a team maintains and its spare parts (orders.assets) ---------------


def downtime_priority(stake: Decimal) -> str:
    """The order priority EUR at stake earns: urgent from MF_DOWNTIME_URGENT_EUR, high from
    MF_DOWNTIME_HIGH_EUR, else "" (no raise)."""
    if stake <= 0:
        return ""
    if stake >= settings.MF_DOWNTIME_URGENT_EUR:
        return Order.Priority.URGENT
    if stake >= settings.MF_DOWNTIME_HIGH_EUR:
        return Order.Priority.HIGH
    return ""


class Asset(models.Model):
    """A piece of equipment a team maintains: the machine its spare parts are for."""

    class Criticality(models.TextChoices):
        CRITICAL = "critical", "critical: production stops without it"
        HIGH = "high", "high"
        MEDIUM = "medium", "medium"
        LOW = "low", "low"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assets")
    tag = models.CharField(max_length=50, help_text="the team's asset tag, e.g. L3-PACK-01")
    name = models.CharField(max_length=200, help_text="e.g. line 3 packer")
    location = models.CharField(max_length=200, blank=True)
    criticality = models.CharField(
        max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM
    )
    downtime_cost_per_hour = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=Decimal(0),
        help_text="what an hour of this asset standing still costs (EUR)",
    )
    # Set by the team when it breaks down, cleared when it runs again (orders.assets).
    down_since = models.DateTimeField(null=True, blank=True)
    down_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "tag"]
        constraints = [
            models.UniqueConstraint(fields=["team", "tag"], name="unique_asset_tag_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.tag} {self.name}"

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    @property
    def is_critical_down(self) -> bool:
        """Down and critical: its orders get a downtime priority and may skip approval."""
        return self.is_down and self.criticality == self.Criticality.CRITICAL

    def downtime_stake(self, lead_time_s: int) -> Decimal:
        """EUR lost while it waits for parts that take `lead_time_s`: cost/h x hours."""
        hours = Decimal(max(lead_time_s, 0)) / Decimal(3600)
        return (self.downtime_cost_per_hour * hours).quantize(Decimal("0.01"))


class AssetPart(models.Model):
    """One spare part of an asset: a saved configuration (revision, parameters, material)
    ordered again as it is."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="parts")
    revision = models.ForeignKey(PartRevision, on_delete=models.PROTECT, related_name="+")
    parameters = models.JSONField(help_text="canonical parameter values")
    parameters_hash = models.CharField(max_length=64)
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1, help_text="how many to order at a time")
    label = models.CharField(max_length=200, blank=True, help_text="where it goes on the asset")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset", "pk"]
        constraints = [
            # One entry per configuration: adding it again changes nothing.
            models.UniqueConstraint(
                fields=["asset", "revision", "parameters_hash", "material"],
                name="unique_asset_part_configuration",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset.tag}: {self.revision} in {self.material}"


class Cart(models.Model):
    """A user's cart, kept in the database (not the session): it survives logging out and is
    the same on every device the user signs in from (orders.carts)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cart"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cart of {self.user}"


class CartLine(models.Model):
    """One configured part in a cart, checked when added; priced again when ordered or saved
    as a quote (the price shown here is indicative)."""

    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    # CASCADE, not PROTECT: a cart line is no record; an order line or saved quote line is.
    revision = models.ForeignKey(PartRevision, on_delete=models.CASCADE, related_name="+")
    parameters = models.JSONField(help_text="canonical parameter values")
    parameters_hash = models.CharField(max_length=64)
    material = models.ForeignKey(Material, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    quoted_total = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    note = models.CharField(
        max_length=200, blank=True, help_text="where the line came from (a reorder of O-000042)"
    )
    added_at = models.DateTimeField()

    class Meta:
        ordering = ["cart", "added_at", "pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.revision} in {self.cart}"


class SavedQuoteQuerySet(models.QuerySet["SavedQuote"]):
    def for_user(self, user: object) -> "SavedQuoteQuerySet":
        """The saved quotes of the organisations the user belongs to (as Order.for_user)."""
        if not isinstance(user, get_user_model()) or not user.is_authenticated:
            return self.none()
        return self.filter(organisation__memberships__user=user)


class SavedQuote(models.Model):
    """Prices held for a while: the lines of a cart (or an API request) quoted once, kept
    with their quotes until `valid_until`, to share with an approver, print for purchasing,
    and order at these prices while valid (orders.saved_quotes)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="saved_quotes"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="saved_quotes"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="saved_quotes"
    )
    created_at = models.DateTimeField()
    # The last day the prices hold (inclusive): created + MF_QUOTE_VALID_DAYS.
    valid_until = models.DateField()
    reference = models.CharField(max_length=100, blank=True, help_text="the customer's own ref")
    note = models.TextField(blank=True)
    total_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    shared_at = models.DateTimeField(null=True, blank=True)
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="who shared it with the team's approvers",
    )
    # The order placed from it, at its prices: a quote is ordered once.
    order = models.OneToOneField(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="saved_quote"
    )

    objects = SavedQuoteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"Q-{self.created_at.year}-{self.pk:06d}"

    def is_valid_on(self, day: date) -> bool:
        return day <= self.valid_until


class SavedQuoteLine(models.Model):
    quote = models.ForeignKey(SavedQuote, on_delete=models.CASCADE, related_name="lines")
    revision = models.ForeignKey(PartRevision, on_delete=models.PROTECT, related_name="+")
    parameters = models.JSONField(help_text="canonical parameter values")
    parameters_hash = models.CharField(max_length=64)
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    # orders.quoting.Quote as JSON: what the order line takes over when the quote is ordered.
    quote_json = models.JSONField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    lead_time_s = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["quote", "pk"]

    def __str__(self) -> str:
        return f"{self.quote.number}: {self.quantity} x {self.revision}"


class CustomerUploadQuerySet(models.QuerySet["CustomerUpload"]):
    def for_user(self, user: object) -> "CustomerUploadQuerySet":
        """Uploads of the organisations the user belongs to: the only way views read them."""
        if not isinstance(user, get_user_model()) or not user.is_authenticated:
            return self.none()
        return self.filter(organisation__memberships__user=user)


class CustomerUpload(models.Model):
    """A requester's own STEP or STL file for a part that is not in the catalog (orders.uploads).

    It is made a private static revision (catalog: PartFamily.private) so that the preview,
    the DFM report, the quote, order lines and the pipeline handle it as any static part;
    only its organisation sees it or orders it. A catalog admin may promote it into the
    catalog: a new public part made from the same file (`promoted_to`).
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="uploads"
    )
    name = models.CharField(max_length=200, help_text="what the part is, in the customer's words")
    file_name = models.CharField(max_length=255, help_text="the uploaded file's own name")
    format = models.CharField(max_length=4)  # "step" | "stl"
    size = models.PositiveIntegerField(help_text="bytes")
    triangles = models.PositiveIntegerField(null=True, blank=True, help_text="STL only")
    # PROTECT: the private revision is what its orders point at.
    revision = models.OneToOneField(PartRevision, on_delete=models.PROTECT, related_name="upload")
    created_at = models.DateTimeField()
    promoted_to = models.ForeignKey(
        PartRevision,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the catalog revision a catalog admin made of it",
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    # A mesh drawn in inches (or metres, cm) that its uploader accepted at the scale the DFM
    # report offered: `revision` is then the scaled copy, `unscaled_revision` the file as sent.
    scale = models.FloatField(default=1.0, help_text="millimetres per file unit (25.4: inches)")
    unscaled_revision = models.ForeignKey(
        PartRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = CustomerUploadQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The organisation's uploads page, newest first, and the daily upload limit.
            models.Index(fields=["organisation", "created_at"], name="upload_org_created"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"

    @property
    def number(self) -> str:
        return f"U-{self.pk:06d}"
