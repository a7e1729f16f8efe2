"""The seeded account's fixed data: work statuses and their filters, the company, job types with their price
lists, tags, notes, employees and the names and streets customers are made from."""

from __future__ import annotations

WORK_STATUSES = (
    "needs scheduling",
    "scheduled",
    "in progress",
    "complete rated",
    "complete unrated",
    "user canceled",
    "pro canceled",
)
#: ``work_status[]`` filter values -> response ``work_status`` values.
STATUS_FILTERS: dict[str, frozenset[str]] = {
    "unscheduled": frozenset({"needs scheduling"}),
    "scheduled": frozenset({"scheduled"}),
    "in_progress": frozenset({"in progress"}),
    "completed": frozenset({"complete rated", "complete unrated"}),
    "canceled": frozenset({"user canceled", "pro canceled"}),
}
COMPLETE = STATUS_FILTERS["completed"]
CANCELED = STATUS_FILTERS["canceled"]

COMPANY_NAME = "Lone Star Home Services"
# name -> (descriptions, line items (name, kind, unit_price cents, quantity))
JOB_TYPES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, int, int], ...]]] = {
    "HVAC — Tune-Up": (
        ("Seasonal AC tune-up", "Furnace safety inspection", "Heat pump maintenance"),
        (("Tune-up visit", "labor", 12900, 1), ("Air filter 16x25x1", "materials", 1800, 2)),
    ),
    "Plumbing Repair": (
        ("Leaking kitchen faucet", "Water heater not heating", "Slow drain in master bath", "Running toilet"),
        (("Diagnostic fee", "labor", 8900, 1), ("Repair labor (per hour)", "labor", 11500, 2)),
    ),
    "Gutter Cleaning": (
        ("Gutter cleaning, one story", "Gutter cleaning and downspout flush"),
        (("Gutter cleaning (per linear ft)", "labor", 125, 160),),
    ),
    "Electrical": (
        ("Install ceiling fan", "Replace GFCI outlets", "Panel inspection"),
        (("Electrical labor (per hour)", "labor", 13500, 2), ("GFCI outlet", "materials", 2600, 3)),
    ),
    "Pest Control": (
        ("Quarterly pest treatment", "Termite inspection", "Ant treatment"),
        (("Pest treatment", "labor", 14900, 1),),
    ),
}
BUSINESS_UNITS = ("Residential", "Commercial")
LEAD_SOURCES = (("Google", False), ("Facebook", False), ("Referral", True), ("Website", True), ("Yelp", False))
CUSTOMER_TAGS = ("vip", "maintenance plan", "pays by check", "dog on property", "new construction")
JOB_TAGS = ("warranty", "priority", "callback", "maintenance plan", "estimate approved", "after hours")
NOTES = (
    "Gate code 4521",
    "Customer prefers a text before arrival",
    "Dog in backyard, keep the gate closed",
    "Park in the driveway, not on the street",
    "Bring the tall ladder: two-story house",
    "Call on arrival, doorbell is broken",
)
EMPLOYEES = (
    ("Maria", "Gonzalez", "office staff", "#3f51b5", ("dispatcher",), True),
    ("Jake", "Thompson", "field tech", "#e91e63", ("hvac", "lead tech"), False),
    ("DeShawn", "Carter", "field tech", "#009688", ("plumbing",), False),
    ("Emily", "Nguyen", "field tech", "#ff9800", ("electrical", "hvac"), False),
    ("Luis", "Ramirez", "field tech", "#795548", ("pest", "gutters"), False),
)
FIRST_NAMES = (
    "James", "Olivia", "Noah", "Emma", "Liam", "Ava", "Mason", "Sophia", "Ethan", "Isabella", "Lucas",
    "Mia", "Benjamin", "Charlotte", "Henry", "Amelia", "Carlos", "Harper", "Wyatt", "Evelyn", "Jackson",
    "Abigail", "Samuel", "Ella", "Daniel", "Grace", "Mateo", "Chloe", "Caleb", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Perez", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
)  # fmt: skip
BUSINESSES = ("Barton Creek Dental", "Hill Country Realty", "Eastside Coffee Co", "Capitol Auto Repair")
STREETS = (
    "Oak Hollow Dr", "Congress Ave", "Burnet Rd", "Lamar Blvd", "Pecan St", "Riverside Dr", "Bluebonnet Ln",
    "Shoal Creek Blvd", "Manchaca Rd", "Brodie Ln", "Mesquite Trl", "Live Oak St",
)  # fmt: skip
CITIES = (
    ("Austin", "78704"), ("Austin", "78745"), ("Round Rock", "78664"), ("Cedar Park", "78613"),
    ("Pflugerville", "78660"), ("Georgetown", "78626"), ("Leander", "78641"),
)  # fmt: skip
PERMISSIONS = (
    "can_add_and_edit_job", "can_be_booked_online", "can_call_and_text_with_customers",
    "can_chat_with_customers", "can_delete_and_cancel_job", "can_edit_message_on_invoice",
    "can_see_street_view_data", "can_share_job", "can_take_payment_see_prices", "can_see_customers",
    "can_see_full_schedule", "can_see_future_jobs", "can_see_marketing_campaigns", "can_see_reporting",
    "can_edit_settings", "is_point_of_contact", "is_admin",
)  # fmt: skip
