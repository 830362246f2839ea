"""The CRM half of the Close emulator: leads (full records), contacts,
opportunities, users, lead and opportunity statuses, pipelines, their custom
fields, and the data behind Advanced Filtering of leads, contacts and
opportunities.  Written to /work/shared/close-crm-api.md; the behaviour is
described in close_emulator.py's docstring (section "CRM resources").

close_emulator.py imports this module and binds E to itself before serving
(this module never imports it: run as a script it is __main__, and a second
copy would have other exception classes).  Constants here are computed the
same way as there (pad_id).
"""

import datetime as dt
import random
import re
import string
from decimal import Decimal

E = None        # the close_emulator module, bound by it

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def pad_id(prefix, word, length):
    body = word + "0" * (length - len(word))
    assert len(body) == length and all(c in BASE62 for c in body), (prefix, word)
    return prefix + body


ORG_ID = pad_id("orga_", "Emulator", 43)
HTML_URL = "https://app.close.com/lead/%s/"

# Users: (credential label or None, id, first name, last name, email, date_created)
USER_SPECS = [
    ("test", pad_id("user_", "Test", 43), "Test", "User", "test@example.com", "2020-01-02T08:00:00.000000+00:00"),
    ("alice", pad_id("user_", "Alice", 43), "Alice", "Anders", "alice@example.com",
     "2020-01-03T08:00:00.000000+00:00"),
    ("bob", pad_id("user_", "Bob", 43), "Bob", "Brown", "bob@example.com", "2020-01-04T08:00:00.000000+00:00"),
    ("oauth", pad_id("user_", "OAuth", 43), "OAuth", "Client", "oauth@example.com",
     "2020-01-05T08:00:00.000000+00:00"),
]
USER_IDS = {label: uid for label, uid, *_ in USER_SPECS}
# A former member: opportunities may name a user that /user/ does not list.
USER_FORMER = pad_id("user_", "Former", 43)
USER_NAMES = {uid: "%s %s" % (first, last) for _l, uid, first, last, *_ in USER_SPECS}
USER_NAMES[USER_FORMER] = "Former Member"

# Lead statuses: the ids of close_emulator.STATUSES, in the same order.
LEAD_STATUS_SPECS = [
    (pad_id("stat_", "Potential", 43), "Potential", "blue"),
    (pad_id("stat_", "Qualified", 43), "Qualified", "yellow"),
    (pad_id("stat_", "Customer", 43), "Customer", None),
]

# Pipelines (22-character ids, naive timestamps) and their opportunity statuses.
PIPE_SALES = pad_id("pipe_", "Sales", 22)
PIPE_RENEWALS = pad_id("pipe_", "Renewals", 22)
PIPELINE_SPECS = [
    (PIPE_SALES, "Sales", "2020-02-01T10:00:00.123456", "2020-02-03T11:30:00.654321"),
    (PIPE_RENEWALS, "Renewals", "2020-02-02T09:15:00.000001", "2020-02-02T09:15:00.000001"),
]
STAT_ACTIVE = pad_id("stat_", "Active", 43)
STAT_DEMO = pad_id("stat_", "Demo", 43)
STAT_WON = pad_id("stat_", "Won", 43)
STAT_LOST = pad_id("stat_", "Lost", 43)
STAT_RENEWAL = pad_id("stat_", "UpForRenewal", 43)
STAT_RENEWED = pad_id("stat_", "Renewed", 43)
STAT_CHURNED = pad_id("stat_", "Churned", 43)
OPP_STATUS_SPECS = [   # (id, label, type, pipeline), in pipeline order
    (STAT_ACTIVE, "Active", "active", PIPE_SALES),
    (STAT_DEMO, "Demo scheduled", "active", PIPE_SALES),
    (STAT_WON, "Won", "won", PIPE_SALES),
    (STAT_LOST, "Lost", "lost", PIPE_SALES),
    (STAT_RENEWAL, "Up for renewal", "active", PIPE_RENEWALS),
    (STAT_RENEWED, "Renewed", "won", PIPE_RENEWALS),
    (STAT_CHURNED, "Churned", "lost", PIPE_RENEWALS),
]

CRM_TYPES = ("lead", "contact", "opportunity")
CRM_TYPE_NAMES = {"lead": "Lead", "contact": "Contact", "opportunity": "Opportunity"}

# Custom fields of leads, contacts and opportunities:
# (object types, role, id, name, type, multi, choices).  A field with more
# than one object type is shared: it is in each type's schema, but in no
# /custom_field/{type}/ listing.
CRM_FIELD_SPECS = [
    (("lead",), "text", pad_id("cf_", "LeadIndustry", 43), "Industry", "text", False, None),
    (("lead",), "number", pad_id("cf_", "LeadEmployees", 43), "Employees", "number", False, None),
    (("lead",), "date", pad_id("cf_", "LeadFounded", 43), "Founded", "date", False, None),
    (("lead",), "multi_choices", pad_id("cf_", "LeadSegments", 43), "Segments", "choices", True,
     ["SMB", "Mid-Market", "Enterprise"]),
    (("lead",), "user", pad_id("cf_", "LeadOwner", 43), "Lead Owner", "user", False, None),
    (("contact",), "text", pad_id("cf_", "ContactNickname", 43), "Nickname", "text", False, None),
    (("contact",), "number", pad_id("cf_", "ContactScore", 43), "Score", "number", False, None),
    (("contact",), "date", pad_id("cf_", "ContactBirthday", 43), "Birthday", "date", False, None),
    (("contact",), "multi_choices", pad_id("cf_", "ContactLanguages", 43), "Languages", "choices", True,
     ["English", "German", "French"]),
    (("opportunity",), "text", pad_id("cf_", "OppSource", 43), "Source", "text", False, None),
    (("opportunity",), "number", pad_id("cf_", "OppSeats", 43), "Seats", "number", False, None),
    (("opportunity",), "date", pad_id("cf_", "OppCloseDate", 43), "Close date", "date", False, None),
    (("opportunity",), "multi_choices", pad_id("cf_", "OppProducts", 43), "Products", "choices", True,
     ["Core", "Analytics", "Support"]),
    (("lead", "contact"), "shared", pad_id("cf_", "SharedRegion", 43), "Region", "choices", False,
     ["EMEA", "AMER", "APAC"]),
]
CRM_CF = {}
for _types, _role, _fid, *_rest in CRM_FIELD_SPECS:
    for _t in _types:
        CRM_CF[_t, _role] = _fid

# Sample contacts and opportunities (fixed ids, attached to close_emulator's sample leads).
CONTACT_MIXED = pad_id("cont_", "Mixed", 43)     # close_emulator.CONTACT_MIXED
CONT = {w: pad_id("cont_", w, 43) for w in (
    "SheetJane", "MixedBilling", "OneOnly", "Plain1A", "Plain2A", "Plain2B", "Plain3A", "Plain4A",
    "Plain5A", "Plain5B", "BigA", "BigB", "BigC")}
CONT["Mixed"] = CONTACT_MIXED
OPPO = {w: pad_id("oppo_", w, 43) for w in (
    "SheetDeal", "MixedWon", "MixedRenewal", "OneMonthly", "Plain1Lost", "Plain2Annual", "Plain3Demo",
    "Plain3NoValue", "Plain4Former", "Plain5Churned")}

# Read-only or derived keys: accepted and dropped on create (unknown keys
# too), ignored on update.
LEAD_KEYS = ("id", "name", "display_name", "description", "url", "status_id", "status_label", "html_url",
             "organization_id", "created_by", "created_by_name", "updated_by", "updated_by_name",
             "date_created", "date_updated", "addresses", "integration_links", "tasks")
CONTACT_KEYS = ("id", "lead_id", "name", "title", "display_name", "emails", "phones", "urls", "timezone",
                "organization_id", "created_by", "updated_by", "date_created", "date_updated",
                "integration_links")
OPP_KEYS = ("id", "lead_id", "lead_name", "status_id", "status_label", "status_display_name", "status_type",
            "pipeline_id", "pipeline_name", "value", "value_period", "value_currency", "value_formatted",
            "expected_value", "annualized_value", "annualized_expected_value", "confidence", "date_won",
            "date_lost", "contact_id", "contact_name", "user_id", "user_name", "note", "note_html",
            "attachments", "integration_links", "organization_id", "created_by", "created_by_name",
            "updated_by", "updated_by_name", "date_created", "date_updated")
VALUE_PERIODS = ("one_time", "monthly", "annual")

# Regular fields Advanced Filtering takes per object type (a search reads
# the stored record's key of that name).
SEARCH_FIELDS = {
    "lead": ("id", "name", "display_name", "description", "url", "status_id", "status_label", "html_url",
             "organization_id", "created_by", "updated_by", "date_created", "date_updated"),
    "contact": ("id", "lead_id", "name", "title", "display_name", "timezone", "organization_id",
                "created_by", "updated_by", "date_created", "date_updated"),
    "opportunity": ("id", "lead_id", "lead_name", "status_id", "status_label", "status_type", "pipeline_id",
                    "value", "value_period", "confidence", "expected_value", "annualized_value",
                    "annualized_expected_value", "date_won", "date_lost", "contact_id", "user_id", "note",
                    "organization_id", "created_by", "updated_by", "date_created", "date_updated"),
}

CRM_CREATE_CLOCK_START = dt.datetime(2020, 9, 1, 8, 0, 0, tzinfo=dt.timezone.utc)
CRM_CREATE_CLOCK_STEP = dt.timedelta(minutes=17, seconds=3, milliseconds=211)
CRM_ID_SEED = 20261129

PHONE_CHARS_RE = re.compile(r"[\s().\-/]")


def user_name(uid):
    return USER_NAMES.get(uid)


def money(cents, period=None):
    """value_formatted: 50000 -> "$500", 550 -> "$5.50", monthly -> "$50 monthly"."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    text = "%s$%s%s" % (sign, "{:,}".format(whole), "" if part == 0 else ".%02d" % part)
    if period in ("monthly", "annual"):
        text += " " + period
    return text


def scaled(cents, confidence):
    """cents * confidence / 100, rounded half up (an integer, like Close's)."""
    if cents is None:
        return None
    return (int(cents) * int(confidence) + 50) // 100


def normalise_phone(text):
    """A phone number in E.164: "8004445555" -> "+18004445555"; None if it is not one."""
    if not isinstance(text, str):
        return None
    s = PHONE_CHARS_RE.sub("", text.strip())
    plus = s.startswith("+")
    digits = s[1:] if plus else s
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        return None
    if plus:
        return "+" + digits
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1":
        return "+" + digits
    return "+" + digits


def phone_view(e164, ptype):
    if e164.startswith("+1") and len(e164) == 12:
        d = e164[2:]
        formatted, country = "+1 %s-%s-%s" % (d[:3], d[3:6], d[6:]), "US"
    else:
        formatted, country = e164, None
    return {"phone": e164, "phone_formatted": formatted, "type": ptype, "country": country}


class Crm:
    """The CRM records of a Store (the store's lock guards them too)."""

    def __init__(self, store):
        self.store = store
        self.rng = random.Random(CRM_ID_SEED)     # not the custom objects' generator: their ids stay
        self.version = 0
        self.cache = {}
        self.users = {}
        self.lead_statuses = {}
        self.pipelines = {}
        self.opp_statuses = {}
        for label, uid, first, last, email, created in USER_SPECS:
            self.users[uid] = {
                "id": uid, "email": email, "first_name": first, "last_name": last, "image": None,
                "organizations": [ORG_ID], "last_used_timezone": "America/New_York" if label != "oauth" else None,
                "email_verified_at": created, "google_profile_image_url": None,
                "date_created": created, "date_updated": created,
            }
        for sid, label, color in LEAD_STATUS_SPECS:
            self.lead_statuses[sid] = {"id": sid, "label": label, "organization_id": ORG_ID, "color": color}
        for sid, label, stype, pipe in OPP_STATUS_SPECS:
            self.opp_statuses[sid] = {"id": sid, "label": label, "type": stype, "pipeline_id": pipe,
                                      "organization_id": ORG_ID}
        for pid, name, created, updated in PIPELINE_SPECS:
            self.pipelines[pid] = {
                "id": pid, "name": name, "organization_id": ORG_ID, "created_by": USER_IDS["test"],
                "updated_by": None if pid == PIPE_RENEWALS else USER_IDS["alice"],
                "date_created": created, "date_updated": updated,
                "statuses": [{"id": s[0], "label": s[1], "type": s[2]} for s in OPP_STATUS_SPECS if s[3] == pid],
            }
        self.fields = {}              # cf id -> definition (with "object_types")
        self.type_fields = {t: [] for t in CRM_TYPES}
        for n, (types, _role, fid, name, ftype, multi, choices) in enumerate(CRM_FIELD_SPECS):
            created = "2020-06-01T12:00:%02d.%06d+00:00" % (n, 1000 * n)
            f = {"id": fid, "name": name, "description": "%s of a %s." % (name, " or ".join(types)),
                 "type": ftype, "required": False, "accepts_multiple_values": multi,
                 "editable_with_roles": [], "is_shared": len(types) > 1,
                 "choices": list(choices) if choices is not None else None,
                 "organization_id": ORG_ID, "created_by": USER_IDS["test"], "updated_by": USER_IDS["test"],
                 "date_created": created, "date_updated": created}
            if len(types) > 1:
                f["associations"] = [{"object_type": t, "required": False, "editable_with_roles": []}
                                     for t in types]
            self.fields[fid] = (f, types)
            for t in types:
                self.type_fields[t].append(fid)
        self.contacts = {}
        self.opportunities = {}
        self.tombstones = {}          # deleted id -> [last answer, stale GETs left] (stale_reads)
        self.contacts_by_lead = {}    # lead id -> [contact], by (date_created, id)
        self.opps_by_lead = {}

    # -- helpers -------------------------------------------------------------

    def bump(self):
        self.version += 1
        self.cache = {}

    def new_id(self, prefix, length=43):
        while True:
            oid = prefix + "".join(self.rng.choices(BASE62, k=length))
            if oid not in self.contacts and oid not in self.opportunities and oid not in self.store.leads:
                return oid

    def field_def(self, otype, fid):
        """The definition of a custom field of that object type, or None."""
        entry = self.fields.get(fid)
        if entry is None or otype not in entry[1]:
            return None
        return entry[0]

    def ordered_custom(self, otype, custom):
        order = {fid: i for i, fid in enumerate(self.type_fields[otype])}
        return sorted(custom, key=lambda k: order.get(k[7:], 1 << 30))

    def records(self, otype):
        if otype == "lead":
            return self.store.leads
        return self.contacts if otype == "contact" else self.opportunities

    # -- leads ---------------------------------------------------------------

    def make_lead(self, lead_id, name, created, status_id, user, description="", url=None,
                  addresses=(), custom=None, updated=None, updated_by=None):
        status = self.lead_statuses.get(status_id)
        rec = {
            "id": lead_id, "name": name, "display_name": name if name else "Untitled",
            "description": description, "url": url,
            "status_id": status_id, "status_label": status["label"] if status else None,
            "html_url": HTML_URL % lead_id, "organization_id": ORG_ID,
            "created_by": user, "created_by_name": user_name(user),
            "updated_by": updated_by or user, "updated_by_name": user_name(updated_by or user),
            "date_created": created, "date_updated": updated or created,
            "addresses": [dict(a) for a in addresses], "integration_links": [], "tasks": [],
        }
        custom = custom or {}
        for key in self.ordered_custom("lead", custom):
            rec[key] = custom[key]
        return rec

    def refresh_lead(self, rec):
        """Recompute a lead's derived keys (in place: indexes keep it)."""
        core = {k: rec[k] for k in LEAD_KEYS if k in rec}
        custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
        core["display_name"] = core["name"] if core["name"] else "Untitled"
        status = self.lead_statuses.get(core["status_id"])
        core["status_label"] = status["label"] if status else None
        core["created_by_name"] = user_name(core["created_by"])
        core["updated_by_name"] = user_name(core["updated_by"])
        rec.clear()
        rec.update(core)
        for key in self.ordered_custom("lead", custom):
            rec[key] = custom[key]
        for opp in self.opps_by_lead.get(rec["id"], ()):
            self.refresh_opportunity(opp)

    def lead_view(self, rec, fields=None):
        """A lead as GET answers it: nested contacts and opportunities, the
        deprecated name-keyed "custom" object, then the custom.cf_ keys."""
        def wanted(key):
            return fields is None or key in fields
        out = {}
        for k, v in rec.items():
            if k.startswith("custom."):
                continue
            out[k] = v
            if k == "addresses":
                if wanted("contacts"):
                    out["contacts"] = [dict(c) for c in self.contacts_by_lead.get(rec["id"], ())]
                if wanted("opportunities"):
                    out["opportunities"] = [dict(o) for o in self.opps_by_lead.get(rec["id"], ())]
        custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
        by_name = {}
        for key, value in custom.items():
            f = self.field_def("lead", key[7:])
            if f is not None:
                by_name[f["name"]] = value
        out["custom"] = by_name
        out.update(custom)
        return project(out, fields)

    # -- contacts -------------------------------------------------------------

    def make_contact(self, cid, lead_id, name, title, emails, phones, urls, user, created, updated=None,
                     custom=None, timezone=None):
        rec = {"id": cid, "lead_id": lead_id, "name": name, "title": title, "display_name": "",
               "emails": emails, "phones": phones, "urls": urls, "timezone": timezone,
               "organization_id": ORG_ID, "created_by": user, "updated_by": user,
               "date_created": created, "date_updated": updated or created, "integration_links": []}
        for key, value in (custom or {}).items():
            rec[key] = value
        self.refresh_contact(rec)
        return rec

    def refresh_contact(self, rec):
        core = {k: rec[k] for k in CONTACT_KEYS if k in rec}
        custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
        core["display_name"] = core["name"] or (core["emails"][0]["email"] if core["emails"] else "")
        rec.clear()
        rec.update(core)
        for key in self.ordered_custom("contact", custom):
            rec[key] = custom[key]

    # -- opportunities -----------------------------------------------------------

    def make_opportunity(self, oid, lead_id, status_id, value, value_period, confidence, user_id, user,
                         created, updated=None, date_won=None, date_lost=None, contact_id=None, note="",
                         custom=None):
        rec = {"id": oid, "lead_id": lead_id, "status_id": status_id, "value": value,
               "value_period": value_period, "confidence": confidence, "date_won": date_won,
               "date_lost": date_lost, "contact_id": contact_id, "user_id": user_id, "note": note,
               "note_html": None, "attachments": [], "integration_links": [], "organization_id": ORG_ID,
               "created_by": user, "updated_by": user, "date_created": created,
               "date_updated": updated or created}
        for key, value in (custom or {}).items():
            rec[key] = value
        self.refresh_opportunity(rec)
        return rec

    def refresh_opportunity(self, rec):
        """Rebuild an opportunity's keys in Close's order, the derived ones recomputed."""
        src = dict(rec)
        status = self.opp_statuses.get(src["status_id"]) or {}
        pipe = self.pipelines.get(status.get("pipeline_id")) or {}
        lead = self.store.leads.get(src["lead_id"]) or {}
        contact = self.contacts.get(src.get("contact_id")) if src.get("contact_id") else None
        value, period, confidence = src["value"], src["value_period"], src["confidence"]
        annualized = None if value is None else int(value) * (12 if period == "monthly" else 1)
        derived = {
            "lead_name": lead.get("name"),
            "status_label": status.get("label"), "status_display_name": status.get("label"),
            "status_type": status.get("type"),
            "pipeline_id": status.get("pipeline_id"), "pipeline_name": pipe.get("name"),
            "value_currency": "USD", "value_formatted": money(value, period),
            "expected_value": scaled(value, confidence), "annualized_value": annualized,
            "annualized_expected_value": scaled(annualized, confidence),
            "contact_name": contact["name"] if contact else None,
            "user_name": user_name(src["user_id"]),
            "created_by_name": user_name(src["created_by"]), "updated_by_name": user_name(src["updated_by"]),
        }
        rec.clear()
        for k in OPP_KEYS:
            rec[k] = derived[k] if k in derived else src.get(k)
        custom = {k: v for k, v in src.items() if k.startswith("custom.")}
        for key in self.ordered_custom("opportunity", custom):
            rec[key] = custom[key]

    # -- indexes -------------------------------------------------------------

    def add_child(self, otype, rec):
        index = self.contacts_by_lead if otype == "contact" else self.opps_by_lead
        self.records(otype)[rec["id"]] = rec
        lst = index.setdefault(rec["lead_id"], [])
        key = (rec["date_created"], rec["id"])
        if not lst or (lst[-1]["date_created"], lst[-1]["id"]) < key:
            lst.append(rec)               # the usual case: newest last
        else:
            E.insort_by(lst, rec, lambda r: (r["date_created"], r["id"]))
        self.bump()

    def remove_child(self, otype, rec):
        index = self.contacts_by_lead if otype == "contact" else self.opps_by_lead
        del self.records(otype)[rec["id"]]
        lst = index.get(rec["lead_id"], [])
        for i, r in enumerate(lst):
            if r is rec:
                del lst[i]
                break
        if not lst:
            index.pop(rec["lead_id"], None)
        self.bump()

    def sorted_records(self, otype, order):
        """Records of a type in a listing's order, kept until the next write.
        order: [(key, descending)], ties by id ascending."""
        ck = (otype, tuple(order))
        hit = self.cache.get(ck)
        if hit is not None:
            return hit
        recs = sorted(self.records(otype).values(), key=lambda r: r["id"])
        for key, desc in reversed(order):
            present = [r for r in recs if r.get(key) is not None]
            missing = [r for r in recs if r.get(key) is None]
            present.sort(key=lambda r: r[key], reverse=desc)
            recs = present + missing          # missing values last
        self.cache[ck] = recs
        return recs

    # -- custom field schema views ---------------------------------------------

    def field_list(self, otype):
        """/custom_field/{type}/: the type's own fields (shared ones are left out)."""
        out = []
        for fid in self.type_fields[otype]:
            f, types = self.fields[fid]
            if len(types) == 1:
                out.append(dict(f))
        return out

    def schema(self, otype):
        return {"fields": [dict(self.fields[fid][0]) for fid in self.type_fields[otype]],
                "name": CRM_TYPE_NAMES[otype], "object_type": otype, "organization_id": ORG_ID}


def project(rec, fields):
    """_fields: None = everything; "custom" = the deprecated object plus every
    custom.cf_ key; "custom.cf_X" = that key; unknown names are left out."""
    if fields is None:
        return rec
    out = {}
    for name in fields:
        if name == "custom":
            if "custom" in rec:
                out["custom"] = rec["custom"]
            for k, v in rec.items():
                if k.startswith("custom."):
                    out[k] = v
        elif name in rec:
            out[name] = rec[name]
    return out


def build_crm_sample(store):
    """Enrich close_emulator's sample leads and attach contacts and
    opportunities to them (fixed ids, a clock of their own: the custom
    objects' ids and dates stay as they were)."""
    crm = store.crm
    E_ = E
    leads = E_.SAMPLE_LEADS
    cf = CRM_CF
    alice, bob, test = USER_IDS["alice"], USER_IDS["bob"], USER_IDS["test"]
    clock = E_.Clock(CRM_CREATE_CLOCK_START, CRM_CREATE_CLOCK_STEP)

    def lead(key, **kw):
        rec = store.leads[leads[key]]
        custom = kw.pop("custom", {})
        for k, v in kw.items():
            rec[k] = v
        for fid, v in custom.items():
            rec["custom." + fid] = v
        crm.refresh_lead(rec)

    hq = {"label": "business", "address_1": "1 Market St", "address_2": None, "city": "San Francisco",
          "state": "CA", "zipcode": "94105", "country": "US"}
    lead("sheet", description="The sheet's example lead.", url="https://sheet.example.com",
         addresses=[hq], custom={cf["lead", "text"]: "Real estate", cf["lead", "user"]: alice})
    lead("mixed", description="", url=None,
         addresses=[{"label": "mailing", "address_1": "Bahnhofstrasse 1", "address_2": "",
                     "city": "Zürich", "state": None, "zipcode": "8001", "country": "CH"},
                    dict(hq, label="office")],
         custom={cf["lead", "text"]: "Software", cf["lead", "number"]: 120, cf["lead", "date"]: "2011-04-01",
                 cf["lead", "multi_choices"]: ["SMB", "Enterprise"], cf["lead", "user"]: bob,
                 cf["lead", "shared"]: "EMEA"}, updated_by=alice)
    lead("one", custom={cf["lead", "number"]: Decimal("2.5"), cf["lead", "shared"]: "APAC"})
    for i in range(1, 6):
        lead("plain%d" % i, custom={cf["lead", "text"]: "Retail" if i % 2 else "Software",
                                    cf["lead", "number"]: 10 * i})
    lead("big", custom={cf["lead", "multi_choices"]: ["Enterprise"]})

    def contact(word, key, name, title="", emails=(), phones=(), custom=None, user=test):
        created = clock.tick()
        rec = crm.make_contact(CONT[word], leads[key], name, title,
                               [{"email": e, "type": "office", "is_unsubscribed": False} for e in emails],
                               [phone_view(normalise_phone(p), "office") for p in phones],
                               [], user, created,
                               custom={"custom." + f: v for f, v in (custom or {}).items()})
        crm.add_child("contact", rec)
        return rec

    contact("SheetJane", "sheet", "Jane Sheet", "CEO", ["jane@sheet.example.com"], ["8004445555"],
            {cf["contact", "text"]: "JJ", cf["contact", "date"]: "1980-02-29"})
    contact("Mixed", "mixed", "Mia Mixed", "Buyer", ["mia@mixed.example.com", "m@mixed.example.com"],
            ["+41 44 123 45 67"], {cf["contact", "number"]: 7, cf["contact", "multi_choices"]: ["German", "English"],
                                   cf["contact", "shared"]: "EMEA"})
    contact("MixedBilling", "mixed", "Billing Desk", "", ["billing@mixed.example.com"], [], user=alice)
    contact("OneOnly", "one", None, None, ["nobody@one.example.com"], [])
    contact("Plain1A", "plain1", "Pat One", "Owner", [], ["(415) 555-0101"], {cf["contact", "number"]: 1})
    contact("Plain2A", "plain2", "Pat Two", "Owner", [], [], {cf["contact", "number"]: 2})
    contact("Plain2B", "plain2", "Sam Two", "Assistant", [], [])
    contact("Plain3A", "plain3", "Pat Three", "Owner", [], [], {cf["contact", "number"]: 3})
    contact("Plain4A", "plain4", "Pat Four", "Owner", [], [])
    contact("Plain5A", "plain5", "Pat Five", "Owner", [], [], {cf["contact", "number"]: 5})
    contact("Plain5B", "plain5", "Sam Five", "", [], [])
    for w in ("BigA", "BigB", "BigC"):
        contact(w, "big", "Big %s" % w[-1], "Staff", [], [])

    def opp(word, key, status, value, period="one_time", confidence=50, user_id=alice, date_won=None,
            contact_id=None, note="", custom=None, date_lost=None):
        created = clock.tick()
        rec = crm.make_opportunity(OPPO[word], leads[key], status, value, period, confidence, user_id, test,
                                   created, date_won=date_won, date_lost=date_lost, contact_id=contact_id,
                                   note=note, custom={"custom." + f: v for f, v in (custom or {}).items()})
        crm.add_child("opportunity", rec)
        return rec

    opp("SheetDeal", "sheet", STAT_ACTIVE, 50000, contact_id=CONT["SheetJane"], note="First call went well.",
        custom={cf["opportunity", "text"]: "Referral", cf["opportunity", "number"]: 5})
    opp("MixedWon", "mixed", STAT_WON, 300000, confidence=100, user_id=bob, date_won="2020-09-15",
        contact_id=CONTACT_MIXED, custom={cf["opportunity", "multi_choices"]: ["Core", "Support"],
                                          cf["opportunity", "date"]: "2020-09-15"})
    # active again after a win: date_won stays (Close never clears it)
    opp("MixedRenewal", "mixed", STAT_RENEWAL, 5000, "monthly", 80, bob, date_won="2021-07-16")
    opp("OneMonthly", "one", STAT_DEMO, 2550, "monthly", 25)
    opp("Plain1Lost", "plain1", STAT_LOST, 120000, confidence=0, date_lost="2020-10-01T12:00:00.000000+00:00")
    opp("Plain2Annual", "plain2", STAT_ACTIVE, 50000, "annual", 60, test)
    opp("Plain3Demo", "plain3", STAT_DEMO, 999, confidence=33, custom={cf["opportunity", "number"]: 12})
    opp("Plain3NoValue", "plain3", STAT_ACTIVE, None, confidence=50, user_id=test)
    opp("Plain4Former", "plain4", STAT_WON, 75000, confidence=100, user_id=USER_FORMER, date_won="2020-11-30")
    opp("Plain5Churned", "plain5", STAT_CHURNED, 1000, "monthly", 10, date_lost="2021-01-05T09:30:00.000000+00:00")


# ---------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------

OPP_ORDER_BY = ("date_won", "date_updated", "date_created", "confidence", "user_name", "value",
                "annualized_value", "annualized_expected_value")
OPP_EQ_FILTERS = {"lead_id": "lead_id", "user_id": "user_id", "status_id": "status_id",
                  "status_type": "status_type", "status_label": "status_label", "status": "status_label",
                  "value_period": "value_period", "organization_id": "organization_id"}
OPP_DATE_FILTERS = ("date_won", "date_created", "date_updated")
# documented opportunity parameters this emulator does not apply: refused,
# so that a client sending them learns it here rather than in production
OPP_NOT_EMULATED = ("query", "lead_query", "lead_saved_search_id", "is_stalled", "_group_by")
USER_ORDER_BY = {"last_name,first_name": ("last_name", "first_name"),
                 "first_name,last_name": ("first_name", "last_name")}


def tz_offset(headers):
    """The x-tz-offset header in hours (0 when absent); 400 when it is not a number."""
    raw = headers.get("x-tz-offset")
    if raw is None or not raw.strip():
        return 0.0
    try:
        hours = float(raw.strip())
    except ValueError:
        hours = None
    if hours is None or not -14 <= hours <= 14 or hours != hours:
        raise E.ApiError(400, {"error": "x-tz-offset must be a number of hours between -14 and 14"})
    return hours


def local_midnight(day, hours):
    """00:00 of that date at a UTC offset of `hours`, as a canonical UTC timestamp."""
    tz = dt.timezone(dt.timedelta(hours=hours))
    return E.fmt_ts(dt.datetime.combine(day, dt.time(), tz).astimezone(dt.timezone.utc))


def local_date(instant_text, hours):
    """The date at offset `hours` of a canonical UTC timestamp."""
    t = E.parse_datetime(instant_text) + dt.timedelta(hours=hours)
    return t.date()


def filter_instant(text, hours):
    """A date filter's value -> (start, end) canonical UTC strings: a date is
    its local day [start, next day), a date-time one instant (naive: local)."""
    text = text.strip()
    if E.DATE_RE.fullmatch(text):
        day = dt.date.fromisoformat(text)
        return local_midnight(day, hours), local_midnight(day + dt.timedelta(days=1), hours)
    if E.DATETIME_RE.fullmatch(text):
        t = E.fmt_ts(E.parse_datetime(text).astimezone(dt.timezone.utc))
        return t, t
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)", text)
    if m:
        naive = dt.datetime.fromisoformat(m.group(1) + "T" + m.group(2))
        t = E.fmt_ts((naive - dt.timedelta(hours=hours)).replace(tzinfo=dt.timezone.utc))
        return t, t
    raise ValueError(text)


def date_predicate(key, op, text, hours):
    """A predicate on a record for `key`__op=text (op "" is equality)."""
    if key == "date_won":
        text = text.strip()
        if E.DATE_RE.fullmatch(text):
            day = dt.date.fromisoformat(text).isoformat()
        else:
            day = local_date(filter_instant(text, hours)[0], hours).isoformat()
        lo = hi = day
        inclusive_hi = True
    else:
        lo, hi = filter_instant(text, hours)
        inclusive_hi = lo == hi

    def get(rec):
        v = rec.get(key)
        if v is None:
            return None
        return v if key == "date_won" else E._value_instant(v)
    if op == "":
        if inclusive_hi:
            return lambda r: get(r) is not None and lo <= get(r) <= hi
        return lambda r: get(r) is not None and lo <= get(r) < hi
    if op == "gt":
        return (lambda r: get(r) is not None and get(r) > hi) if inclusive_hi else \
            (lambda r: get(r) is not None and get(r) >= hi)
    if op == "gte":
        return lambda r: get(r) is not None and get(r) >= lo
    if op == "lt":
        return lambda r: get(r) is not None and get(r) < lo
    if op == "lte":
        return (lambda r: get(r) is not None and get(r) <= hi) if inclusive_hi else \
            (lambda r: get(r) is not None and get(r) < hi)
    raise ValueError(op)


def opportunity_aggregates(recs):
    """The /opportunity/ listing's aggregates over every match (not one page)."""
    counts = dict.fromkeys(VALUE_PERIODS, 0)
    total = dict.fromkeys(VALUE_PERIODS, 0)
    expected = dict.fromkeys(VALUE_PERIODS, 0)
    for r in recs:
        p = r["value_period"] if r["value_period"] in VALUE_PERIODS else "one_time"
        counts[p] += 1
        total[p] += int(r["value"] or 0)
        expected[p] += int(r["expected_value"] or 0)
    total["annualized"] = total["one_time"] + 12 * total["monthly"] + total["annual"]
    expected["annualized"] = expected["one_time"] + 12 * expected["monthly"] + expected["annual"]
    out = {"total_results": len(recs), "count_by_value_period": counts}
    for name, sums in (("total_value", total), ("expected_value", expected)):
        for p in ("one_time", "monthly", "annual", "annualized"):
            out["%s_%s" % (name, p)] = sums[p]
            out["%s_%s_formatted" % (name, p)] = money(sums[p]) if sums[p] else None
    return out


class CrmHandlers:
    """API handlers of the CRM resources, mixed into close_emulator.Handler
    (which provides self.store, self.headers and self._fields)."""

    # -- paging ------------------------------------------------------------------

    def _crm_paging(self, req, kind):
        """(_skip, _limit) with the CRM caps: _limit <= crm_max_limit (200),
        _skip <= lead_max_skip (35000) on /lead/, <= crm_max_skip elsewhere
        (0: none).  Close's 400 says "less than or equal to"."""
        cfg = self.store.config
        max_limit = cfg["crm_max_limit"]
        max_skip = cfg["lead_max_skip"] if kind == "lead" else cfg["crm_max_skip"]
        errors = {}
        limit, skip = min(100, max_limit), 0
        raw = req.param("_limit")
        if raw is not None:
            if not re.fullmatch(r"-?\d+", raw.strip()):
                errors["_limit"] = "Input should be a valid integer, unable to parse string as an integer"
            else:
                limit = int(raw)
                if limit < 0:
                    errors["_limit"] = "Input should be greater than or equal to 0"
                elif limit > max_limit:
                    errors["_limit"] = "Input should be less than or equal to %d" % max_limit
        raw = req.param("_skip")
        if raw is not None:
            if not re.fullmatch(r"-?\d+", raw.strip()):
                errors["_skip"] = "Input should be a valid integer, unable to parse string as an integer"
            else:
                skip = int(raw)
                if skip < 0:
                    errors["_skip"] = "Input should be greater than or equal to 0"
                elif max_skip and skip > max_skip:
                    errors["_skip"] = ("Input should be less than or equal to %d. To read further, narrow the "
                                       "listing (e.g. by date_created ranges) or use Advanced Filtering "
                                       "(POST /data/search/) or the Export API." % max_skip)
        if errors:
            raise E.ApiError(400, E.field_errors(errors))
        return skip, limit

    def _crm_page(self, req, kind, records, view, extra=None):
        skip, limit = self._crm_paging(req, kind)
        fields = self._fields(req)
        page = [view(r, fields) for r in records[skip:skip + limit]]
        out = {"data": page, "has_more": len(records) > skip + limit}
        if extra:
            out.update(extra)
        return 200, out, []

    @staticmethod
    def _crm_view(rec, fields):
        return project(dict(rec), fields)

    # -- leads ---------------------------------------------------------------------

    def api_crm_list_leads(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            recs = crm.sorted_records("lead", [("date_updated", True)])
            ids = req.param("id__in")
            if ids is not None:
                wanted = set(x.strip() for x in ids.split(",") if x.strip())
                recs = [r for r in recs if r["id"] in wanted]
            return self._crm_page(req, "lead", recs, crm.lead_view, {"total_results": len(recs)})

    def api_crm_get_lead(self, req, label, match, body):
        with self.store.lock:
            rec = self.store.leads.get(match.group(1))
            if rec is None:
                return self._crm_stale(req, match.group(1), "Lead")
            return 200, self.store.crm.lead_view(rec, self._fields(req)), []

    def _crm_stale(self, req, oid, what):
        """A GET by id of a deleted record: its last answer while stale_reads
        allows (Close's reads lag its deletes), then 404."""
        tomb = self.store.crm.tombstones.get(oid)
        if tomb is None or tomb[1] <= 0:
            raise E.ApiError(404, {"error": "%s not found" % what})
        tomb[1] -= 1
        return 200, project(dict(tomb[0]), self._fields(req)), []

    # -- contacts ---------------------------------------------------------------------

    def api_crm_list_contacts(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            lead_id = req.param("lead_id")
            if lead_id is not None:
                recs = sorted(crm.contacts_by_lead.get(lead_id, ()),
                              key=lambda r: (r["date_created"], r["id"]))
                recs.sort(key=lambda r: r["date_created"], reverse=True)
            else:
                recs = crm.sorted_records("contact", [("date_created", True)])
                if store.config.get("stale_lists", 0):
                    # the list index lags deletes: stale copies still listed
                    recs = recs + [t[0] for oid, t in sorted(crm.tombstones.items())
                                   if oid.startswith("cont_")]
            return self._crm_page(req, "contact", recs, self._crm_view)

    def api_crm_get_contact(self, req, label, match, body):
        with self.store.lock:
            rec = self.store.crm.contacts.get(match.group(1))
            if rec is None:
                return self._crm_stale(req, match.group(1), "Contact")
            return 200, project(dict(rec), self._fields(req)), []

    # -- opportunities -------------------------------------------------------------------

    def api_crm_list_opportunities(self, req, label, match, body):
        store = self.store
        hours = tz_offset(self.headers)
        errors = {}
        preds = []
        for name in OPP_NOT_EMULATED:
            if name in req.params:
                errors[name] = "Not emulated: close_fdw must not send it."
        for param, key in OPP_EQ_FILTERS.items():
            if param in req.params:
                value = req.param(param)
                preds.append(lambda r, key=key, value=value: r.get(key) == value)
            if param + "__in" in req.params:
                values = frozenset(v.strip() for v in req.param(param + "__in").split(","))
                preds.append(lambda r, key=key, values=values: r.get(key) in values)
        for key in OPP_DATE_FILTERS:
            for op in ("", "gt", "gte", "lt", "lte"):
                param = key + ("__" + op if op else "")
                if param in req.params:
                    try:
                        preds.append(date_predicate(key, op, req.param(param), hours))
                    except (ValueError, OverflowError):
                        errors[param] = "Input should be a valid date or datetime"
        order = [("date_created", True)]
        raw = req.param("_order_by")
        if raw is not None:
            desc = raw.startswith("-")
            key = raw[1:] if desc else raw
            if key not in OPP_ORDER_BY:
                errors["_order_by"] = "Must be one of %s, optionally prefixed with -." % ", ".join(OPP_ORDER_BY)
            else:
                order = [(key, desc)]
        if errors:
            raise E.ApiError(400, E.field_errors(errors))
        with store.lock:
            crm = store.crm
            lead_id = req.param("lead_id")
            if lead_id is not None and "lead_id" in req.params:
                base = list(crm.opps_by_lead.get(lead_id, ()))
                base.sort(key=lambda r: r["id"])
                for key, desc in reversed(order):
                    present = [r for r in base if r.get(key) is not None]
                    missing = [r for r in base if r.get(key) is None]
                    present.sort(key=lambda r: r[key], reverse=desc)
                    base = present + missing
            else:
                base = crm.sorted_records("opportunity", order)
            recs = [r for r in base if all(p(r) for p in preds)]
            return self._crm_page(req, "opportunity", recs, self._crm_view, opportunity_aggregates(recs))

    def api_crm_get_opportunity(self, req, label, match, body):
        with self.store.lock:
            rec = self.store.crm.opportunities.get(match.group(1))
            if rec is None:
                return self._crm_stale(req, match.group(1), "Opportunity")
            return 200, project(dict(rec), self._fields(req)), []

    # -- users, statuses, pipelines ---------------------------------------------------------

    def api_crm_list_users(self, req, label, match, body):
        raw = req.param("_order_by")
        if raw is not None and raw not in USER_ORDER_BY:
            raise E.ApiError(400, E.field_errors({"_order_by": "Must be last_name,first_name or "
                                                               "first_name,last_name."}))
        with self.store.lock:
            users = list(self.store.crm.users.values())
            if raw is not None:
                keys = USER_ORDER_BY[raw]
                users.sort(key=lambda u: tuple(u[k] for k in keys))
            return self._crm_page(req, "user", users, self._crm_view)

    def api_crm_get_user(self, req, label, match, body):
        with self.store.lock:
            rec = self.store.crm.users.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "User not found"})
            return 200, project(dict(rec), self._fields(req)), []

    def _crm_small(self, req, kind, recs):
        with self.store.lock:
            return self._crm_page(req, kind, list(recs), self._crm_view)

    def _crm_one(self, req, recs, oid, what):
        with self.store.lock:
            rec = recs.get(oid)
            if rec is None:
                raise E.ApiError(404, {"error": "%s not found" % what})
            return 200, project(dict(rec), self._fields(req)), []

    def api_crm_list_lead_statuses(self, req, label, match, body):
        return self._crm_small(req, "lead_status", self.store.crm.lead_statuses.values())

    def api_crm_get_lead_status(self, req, label, match, body):
        return self._crm_one(req, self.store.crm.lead_statuses, match.group(1), "Lead status")

    def api_crm_list_opp_statuses(self, req, label, match, body):
        return self._crm_small(req, "opportunity_status", self.store.crm.opp_statuses.values())

    def api_crm_get_opp_status(self, req, label, match, body):
        return self._crm_one(req, self.store.crm.opp_statuses, match.group(1), "Opportunity status")

    def api_crm_list_pipelines(self, req, label, match, body):
        return self._crm_small(req, "pipeline", self.store.crm.pipelines.values())

    def api_crm_get_pipeline(self, req, label, match, body):
        return self._crm_one(req, self.store.crm.pipelines, match.group(1), "Pipeline")

    # -- custom fields ---------------------------------------------------------------------

    def api_crm_field_schema(self, req, label, match, body):
        otype = match.group(1)
        if otype not in CRM_TYPES:
            raise E.ApiError(404, {"error": "Unknown object type \"%s\"" % otype})
        with self.store.lock:
            return 200, self.store.crm.schema(otype), []

    def api_crm_list_fields(self, req, label, match, body):
        otype = match.group(1)
        with self.store.lock:
            return self._crm_page(req, "custom_field", self.store.crm.field_list(otype), self._crm_view)

    def api_crm_get_field(self, req, label, match, body):
        otype, fid = match.group(1), match.group(2)
        with self.store.lock:
            f = self.store.crm.field_def(otype, fid)
            if f is None:
                raise E.ApiError(404, {"error": "Custom field not found"})
            return 200, project(dict(f), self._fields(req)), []


# ---------------------------------------------------------------------------
# Writes: POST (200, the whole object), PUT (a PATCH), DELETE (200 {})
# ---------------------------------------------------------------------------

ADDRESS_KEYS = ("label", "address_1", "address_2", "city", "state", "zipcode", "country")
TAG_RE = re.compile(r"<[^>]*>")


def _known(value, mapping):
    """value is a string key of mapping (a list or object is not an error here)."""
    return isinstance(value, str) and value in mapping


def _str_or_null(body, key, errors, default=None):
    if key not in body:
        return default
    v = body[key]
    if v is not None and not isinstance(v, str):
        errors[key] = "Input should be a valid string"
        return default
    return v


def _int_or_null(body, key, errors, default=None, low=None, high=None):
    if key not in body:
        return default
    v = body[key]
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, Decimal) and v == v.to_integral_value():
            v = int(v)
        else:
            errors[key] = "Input should be a valid integer"
            return default
    if (low is not None and v < low) or (high is not None and v > high):
        errors[key] = "Input should be between %s and %s" % (low, high)
        return default
    return v


def _list_of_dicts(body, key, errors):
    v = body[key]
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        errors[key] = "Input should be a valid list of objects"
        return None
    if len(v) > 100:
        errors[key] = "List should have at most 100 items"
        return None
    return v


def parse_addresses(body, errors):
    items = _list_of_dicts(body, "addresses", errors)
    if items is None:
        return None
    out = []
    for i, a in enumerate(items):
        rec = {}
        for k in ADDRESS_KEYS:
            v = a.get(k)
            if v is not None and not isinstance(v, str):
                errors["addresses.%d.%s" % (i, k)] = "Input should be a valid string"
            rec[k] = v
        out.append(rec)
    return out


def parse_emails(body, errors):
    items = _list_of_dicts(body, "emails", errors)
    if items is None:
        return None
    out = []
    for i, e in enumerate(items):
        email = e.get("email")
        if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            errors["emails.%d.email" % i] = "value is not a valid email address"
            continue
        out.append({"email": email, "type": e.get("type") or "office", "is_unsubscribed": False})
    return out


def parse_phones(body, errors):
    items = _list_of_dicts(body, "phones", errors)
    if items is None:
        return None
    out = []
    for i, p in enumerate(items):
        e164 = normalise_phone(p.get("phone"))
        if e164 is None:
            errors["phones.%d.phone" % i] = "Invalid phone number."
            continue
        out.append(phone_view(e164, p.get("type") or "office"))
    return out


def parse_urls(body, errors):
    items = _list_of_dicts(body, "urls", errors)
    if items is None:
        return None
    out = []
    for i, u in enumerate(items):
        url = u.get("url")
        if not isinstance(url, str) or not url.strip():
            errors["urls.%d.url" % i] = "Input should be a valid URL"
            continue
        out.append({"url": url, "type": u.get("type") or "url"})
    return out


class CrmWrites:
    """POST/PUT/DELETE of leads, contacts and opportunities (mixed into Handler)."""

    def _crm_now(self):
        return self.store.clock.tick()

    def _crm_today(self, now):
        return local_date(now, tz_offset(self.headers)).isoformat()

    def _crm_custom(self, otype, body, custom, errors, update):
        """Apply the body's custom.cf_X (and, on update, custom.cf_X.add /
        .remove) keys to `custom`; unknown fields are accepted and dropped."""
        crm = self.store.crm
        for key, value in body.items():
            if not key.startswith("custom."):
                continue
            rest, op = key[7:], None
            if update and (rest.endswith(".add") or rest.endswith(".remove")):
                rest, op = rest.rsplit(".", 1)
            f = crm.field_def(otype, rest)
            if f is None:
                continue                 # silently dropped, as Close does with unknown keys
            ckey = "custom." + rest
            try:
                if op is not None:
                    if not f["accepts_multiple_values"]:
                        errors[key] = ".add and .remove apply to multi-value fields only."
                        continue
                    if value is None or isinstance(value, (list, dict)):
                        raise ValueError("A single value is required.")
                    v = E.check_scalar(f, value)
                    cur = list(custom.get(ckey) or [])
                    if op == "add":
                        if v not in cur:
                            cur.append(v)
                    else:
                        cur = [x for x in cur if x != v]
                    if cur:
                        custom[ckey] = cur
                    else:
                        custom.pop(ckey, None)
                elif value is None:
                    custom.pop(ckey, None)
                else:
                    v = E.check_value(f, value)
                    if v == []:
                        custom.pop(ckey, None)
                    else:
                        custom[ckey] = v
            except ValueError as e:
                errors[key] = str(e)

    def _crm_lead_status(self, body, errors, current=None):
        crm = self.store.crm
        if "status_id" in body and "status" in body:
            errors["status"] = "Provide status or status_id, not both."
            return current
        if "status_id" in body:
            sid = body["status_id"]
            if not _known(sid, crm.lead_statuses):
                errors["status_id"] = "Lead status not found."
                return current
            return sid
        if "status" in body:
            for s in crm.lead_statuses.values():
                if s["label"] == body["status"]:
                    return s["id"]
            errors["status"] = "Lead status not found."
            return current
        return current if current is not None else next(iter(crm.lead_statuses))

    def _crm_new_lead(self, name, user, now, status_id=None, **kw):
        crm = self.store.crm
        lead_id = crm.new_id("lead_")
        rec = crm.make_lead(lead_id, name, now, status_id or next(iter(crm.lead_statuses)), user, **kw)
        crm_insert_lead(self.store, rec)
        return rec

    def _crm_created(self, body, errors, now):
        """date_created / created_by given on create (Close's import use)."""
        created, user = now, None
        if "date_created" in body:
            v = body["date_created"]
            inst = E._value_instant(v) if isinstance(v, str) else None
            if inst is None:
                errors["date_created"] = "Input should be a valid datetime"
            else:
                created = inst
        if "created_by" in body:
            v = body["created_by"]
            if not isinstance(v, str) or not E.ID_RES["user"].fullmatch(v):
                errors["created_by"] = "Not a valid user id."
            else:
                user = v
        return created, user

    # -- leads ---------------------------------------------------------------------

    def api_crm_create_lead(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            errors = {}
            name = _str_or_null(body, "name", errors)
            description = _str_or_null(body, "description", errors, "")
            url = _str_or_null(body, "url", errors)
            status_id = self._crm_lead_status(body, errors)
            addresses = parse_addresses(body, errors) if "addresses" in body else []
            custom = {}
            self._crm_custom("lead", body, custom, errors, False)
            contacts = _list_of_dicts(body, "contacts", errors) if "contacts" in body else []
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            for i, c in enumerate(contacts or []):
                self._crm_contact_fields(c, {}, errors, "contacts.%d." % i)
                sub = {}
                self._crm_custom("contact", c, {}, sub, False)
                errors.update(("contacts.%d.%s" % (i, k), v) for k, v in sub.items())
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            now = self._crm_now()
            user = USER_IDS[label]
            rec = self._crm_new_lead(name, user, now, status_id, description=description, url=url,
                                     addresses=addresses or [], custom=custom)
            for c in contacts or []:
                self._crm_insert_contact(c, rec["id"], user, self._crm_now())
            return 200, crm.lead_view(rec, self._fields(req)), []

    def api_crm_update_lead(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            rec = store.leads.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "Lead not found"})
            errors = {}
            changes = {}
            for key in ("name", "description", "url"):
                if key in body:
                    changes[key] = _str_or_null(body, key, errors)
            changes["status_id"] = self._crm_lead_status(body, errors, rec["status_id"])
            if "addresses" in body:
                changes["addresses"] = parse_addresses(body, errors)
            custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
            self._crm_custom("lead", body, custom, errors, True)
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            for k in [k for k in rec if k.startswith("custom.")]:
                del rec[k]
            rec.update(changes)
            rec.update(custom)
            rec["updated_by"] = USER_IDS[label]
            rec["date_updated"] = self._crm_now()
            crm.refresh_lead(rec)
            crm.bump()
            return 200, crm.lead_view(rec, self._fields(req)), []

    def api_crm_delete_lead(self, req, label, match, body):
        store = self.store
        with store.lock:
            rec = store.leads.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "Lead not found"})
            crm_delete_lead(store, rec)
        return 200, {}, []

    # -- contacts ---------------------------------------------------------------------

    def _crm_contact_fields(self, body, out, errors, where=""):
        """Validated contact keys of a create or update body into `out`."""
        sub = {}
        for key in ("name", "title", "timezone"):
            if key in body:
                out[key] = _str_or_null(body, key, sub)
        for key, parse in (("emails", parse_emails), ("phones", parse_phones), ("urls", parse_urls)):
            if key in body:
                out[key] = parse(body, sub)
        for k, v in sub.items():
            errors[where + k] = v
        return out

    def _crm_insert_contact(self, body, lead_id, user, now, created=None):
        crm = self.store.crm
        vals = self._crm_contact_fields(body, {}, {})
        custom = {}
        self._crm_custom("contact", body, custom, {}, False)
        rec = crm.make_contact(crm.new_id("cont_"), lead_id, vals.get("name"), vals.get("title"),
                               vals.get("emails") or [], vals.get("phones") or [], vals.get("urls") or [],
                               user, created or now, updated=now, custom=custom, timezone=vals.get("timezone"))
        crm.add_child("contact", rec)
        return rec

    def api_crm_create_contact(self, req, label, match, body):
        store = self.store
        with store.lock:
            errors = {}
            lead_id = body.get("lead_id")
            if lead_id is not None and not _known(lead_id, store.leads):
                errors["lead_id"] = "Lead not found."
            self._crm_contact_fields(body, {}, errors)
            self._crm_custom("contact", body, {}, errors, False)
            now = self._crm_now() if not errors else None
            created, by = self._crm_created(body, errors, now)
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            user = by or USER_IDS[label]
            if lead_id is None:
                # Close makes a new lead for a contact posted without one
                lead_id = self._crm_new_lead(None, user, now)["id"]
            rec = self._crm_insert_contact(body, lead_id, user, now, created)
            return 200, project(dict(rec), self._fields(req)), []

    def api_crm_update_contact(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            rec = crm.contacts.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "Contact not found"})
            errors = {}
            changes = self._crm_contact_fields(body, {}, errors)
            custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
            self._crm_custom("contact", body, custom, errors, True)
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            # lead_id and every read-only or unknown key: ignored
            for k in [k for k in rec if k.startswith("custom.")]:
                del rec[k]
            rec.update(changes)
            rec.update(custom)
            rec["updated_by"] = USER_IDS[label]
            rec["date_updated"] = self._crm_now()
            crm.refresh_contact(rec)
            for opp in crm.opps_by_lead.get(rec["lead_id"], ()):
                if opp["contact_id"] == rec["id"]:
                    crm.refresh_opportunity(opp)
            crm.bump()
            return 200, project(dict(rec), self._fields(req)), []

    def api_crm_delete_contact(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            rec = crm.contacts.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "Contact not found"})
            crm_tombstone(store, "contact", rec)
            crm.remove_child("contact", rec)
            for opp in crm.opps_by_lead.get(rec["lead_id"], ()):
                if opp["contact_id"] == rec["id"]:
                    opp["contact_id"] = None
                    crm.refresh_opportunity(opp)
        return 200, {}, []

    # -- opportunities -----------------------------------------------------------------

    def _crm_opp_status(self, body, errors, current=None, pipeline_id=None):
        crm = self.store.crm
        if "status_id" in body and "status" in body:
            errors["status"] = "Provide status or status_id, not both."
            return current
        sid = None
        if "status_id" in body:
            sid = body["status_id"]
            if not _known(sid, crm.opp_statuses):
                errors["status_id"] = "Opportunity status not found."
                return current
        elif "status" in body:
            matches = [s for s in crm.opp_statuses.values() if s["label"] == body["status"]
                       and (pipeline_id is None or s["pipeline_id"] == pipeline_id)]
            if not matches:
                errors["status"] = "Opportunity status not found."
                return current
            sid = matches[0]["id"]
        if pipeline_id is not None:
            if sid is None:
                return self.store.crm.pipelines[pipeline_id]["statuses"][0]["id"]
            if crm.opp_statuses[sid]["pipeline_id"] != pipeline_id:
                errors["status_id"] = "The status does not belong to the pipeline."
                return current
        if sid is None:
            return current if current is not None else next(iter(crm.opp_statuses))
        return sid

    def _crm_opp_fields(self, body, errors):
        out = {}
        if "value" in body:
            out["value"] = _int_or_null(body, "value", errors)
        if "value_period" in body:
            if not isinstance(body["value_period"], str) or body["value_period"] not in VALUE_PERIODS:
                errors["value_period"] = "Input should be 'one_time', 'monthly' or 'annual'"
            else:
                out["value_period"] = body["value_period"]
        if "confidence" in body:
            v = _int_or_null(body, "confidence", errors, low=0, high=100)
            if v is None and "confidence" not in errors:
                errors["confidence"] = "Input should be a valid integer"
            out["confidence"] = v
        for key, kind in (("user_id", "user"), ("contact_id", "cont")):
            if key in body:
                v = body[key]
                if key == "user_id" and v is None:
                    errors[key] = "This field may not be null."
                elif v is not None and (not isinstance(v, str) or not E.ID_RES[kind].fullmatch(v)):
                    errors[key] = "Not a valid %s id." % kind
                else:
                    out[key] = v
        if "date_won" in body:
            v = body["date_won"]
            if v is None:
                out["date_won"] = None
            elif isinstance(v, str) and (E.DATE_RE.fullmatch(v) or E.DATETIME_RE.fullmatch(v)):
                try:
                    out["date_won"] = (dt.date.fromisoformat(v) if len(v) == 10
                                       else E.parse_datetime(v).date()).isoformat()
                except ValueError:
                    errors["date_won"] = "Input should be a valid date"
            else:
                errors["date_won"] = "Input should be a valid date"
        if "note_html" in body:
            v = _str_or_null(body, "note_html", errors)
            out["note_html"] = v
            out["note"] = TAG_RE.sub("", v).strip() if v is not None else None
        elif "note" in body:
            out["note"] = _str_or_null(body, "note", errors)
        return out

    def _crm_status_moves(self, rec, old_status, body, now):
        """date_won set on entering a won status (unless given or already
        set; never cleared), date_lost on entering a lost one."""
        new = self.store.crm.opp_statuses.get(rec["status_id"]) or {}
        if new.get("type") == "won" and old_status != rec["status_id"]:
            if rec["date_won"] is None and "date_won" not in body:
                rec["date_won"] = self._crm_today(now)
        if new.get("type") == "lost" and old_status != rec["status_id"]:
            rec["date_lost"] = now

    def api_crm_create_opportunity(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            errors = {}
            lead_id = body.get("lead_id")
            if lead_id is not None and not _known(lead_id, store.leads):
                errors["lead_id"] = "Lead not found."
            pipeline_id = body.get("pipeline_id")
            if pipeline_id is not None and not _known(pipeline_id, crm.pipelines):
                errors["pipeline_id"] = "Pipeline not found."
                pipeline_id = None
            status_id = self._crm_opp_status(body, errors, pipeline_id=pipeline_id)
            vals = self._crm_opp_fields(body, errors)
            custom = {}
            self._crm_custom("opportunity", body, custom, errors, False)
            tz_offset(self.headers)
            now = self._crm_now() if not errors else None
            created, by = self._crm_created(body, errors, now)
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            user = by or USER_IDS[label]
            if lead_id is None:
                lead_id = self._crm_new_lead(None, user, now)["id"]
            rec = crm.make_opportunity(
                crm.new_id("oppo_"), lead_id, status_id, vals.get("value"), vals.get("value_period", "one_time"),
                50 if vals.get("confidence") is None else vals["confidence"],
                vals.get("user_id", USER_IDS[label]), user, created, updated=now,
                date_won=vals.get("date_won"), contact_id=vals.get("contact_id"), note=vals.get("note", ""),
                custom=custom)
            rec["note_html"] = vals.get("note_html")
            self._crm_status_moves(rec, None, body, now)
            crm.refresh_opportunity(rec)
            crm.add_child("opportunity", rec)
            return 200, project(dict(rec), self._fields(req)), []

    def api_crm_update_opportunity(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            rec = crm.opportunities.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "Opportunity not found"})
            errors = {}
            old_status = rec["status_id"]
            status_id = self._crm_opp_status(body, errors, old_status,
                                             pipeline_id=None)
            vals = self._crm_opp_fields(body, errors)
            custom = {k: v for k, v in rec.items() if k.startswith("custom.")}
            self._crm_custom("opportunity", body, custom, errors, True)
            tz_offset(self.headers)
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            # lead_id, pipeline_id and read-only or unknown keys: ignored
            now = self._crm_now()
            for k in [k for k in rec if k.startswith("custom.")]:
                del rec[k]
            rec.update(vals)
            rec.update(custom)
            rec["status_id"] = status_id
            rec["updated_by"] = USER_IDS[label]
            rec["date_updated"] = now
            self._crm_status_moves(rec, old_status, body, now)
            crm.refresh_opportunity(rec)
            crm.bump()
            return 200, project(dict(rec), self._fields(req)), []

    def api_crm_delete_opportunity(self, req, label, match, body):
        store = self.store
        with store.lock:
            crm = store.crm
            rec = crm.opportunities.get(match.group(1))
            if rec is None:
                raise E.ApiError(404, {"error": "Opportunity not found"})
            crm_tombstone(store, "opportunity", rec)
            crm.remove_child("opportunity", rec)
        return 200, {}, []


def crm_insert_lead(store, rec):
    store.leads[rec["id"]] = rec
    order = store.lead_order
    if not order or E.sort_key(order[-1]) < E.sort_key(rec):
        order.append(rec)
    else:
        E.insort_by(order, rec, E.sort_key)
    store.by_lead.setdefault(rec["id"], [])
    store.crm.bump()


def crm_tombstone(store, otype, rec):
    """Remember a deleted record's last answer for stale GETs (stale_reads)."""
    n = store.config.get("stale_reads", 0)
    if n:
        view = store.crm.lead_view(rec) if otype == "lead" else dict(rec)
        store.crm.tombstones[rec["id"]] = [view, n]


def crm_delete_lead(store, rec):
    """Delete a lead with its contacts, opportunities and custom objects."""
    crm = store.crm
    lead_id = rec["id"]
    crm_tombstone(store, "lead", rec)
    for otype, index in (("contact", crm.contacts_by_lead), ("opportunity", crm.opps_by_lead)):
        for child in list(index.get(lead_id, ())):
            crm_tombstone(store, otype, child)      # its reads lag too
            crm.remove_child(otype, child)
    for obj in list(store.by_lead.get(lead_id, ())):
        store.remove(obj)
    store.by_lead.pop(lead_id, None)
    for key in [k for k in store.by_lead_type if k[0] == lead_id]:
        del store.by_lead_type[key]
    order = store.lead_order
    i = E.bisect_left_by(order, E.sort_key(rec), E.sort_key)
    assert order[i] is rec
    del order[i]
    del store.leads[lead_id]
    store.version += 1
    crm.bump()


# ---------------------------------------------------------------------------
# Control API: bulk data for tests, and the records as stored
# ---------------------------------------------------------------------------

GENERATE_KEYS = ("leads", "contacts_per_lead", "opportunities_per_lead", "lead_id", "name_prefix",
                 "date_created", "start", "step_ms")


class CrmControl:
    """Control endpoints of the CRM data (mixed into close_emulator.Handler)."""

    def ctl_crm_generate(self, req):
        """POST /_emulator/crm/generate: many leads, contacts and opportunities, fast."""
        data = self._control_body(req)
        store = self.store
        errors = {k: "Unknown key." for k in data if k not in GENERATE_KEYS}
        counts = {}
        for k in ("leads", "contacts_per_lead", "opportunities_per_lead"):
            v = data.get(k, 0)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 500_000:
                errors[k] = "Must be an integer between 0 and 500000."
            counts[k] = v
        prefix = data.get("name_prefix", "Generated")
        if not isinstance(prefix, str):
            errors["name_prefix"] = "Must be a string."
        lead_id = data.get("lead_id")
        times = None
        if data.get("date_created") is not None:
            inst = E._value_instant(data["date_created"]) if isinstance(data["date_created"], str) else None
            if inst is None:
                errors["date_created"] = "Must be an ISO 8601 date-time with an offset."
            times = ("same", inst)
        elif data.get("start") is not None:
            inst = E._value_instant(data["start"]) if isinstance(data["start"], str) else None
            step = data.get("step_ms", 1000)
            if inst is None:
                errors["start"] = "Must be an ISO 8601 date-time with an offset."
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                errors["step_ms"] = "Must be an integer >= 0."
            elif inst is not None:
                times = ("step", [E.parse_datetime(inst), dt.timedelta(milliseconds=step)])
        with store.lock:
            if lead_id is not None and lead_id not in store.leads:
                errors["lead_id"] = "Unknown lead."
            if errors:
                raise E.ApiError(400, E.field_errors(errors))
            crm = store.crm

            def when():
                if times is None:
                    return store.clock.tick()
                if times[0] == "same":
                    return times[1]
                t = times[1][0]
                times[1][0] = t + times[1][1]
                return E.fmt_ts(t)
            lead_statuses = list(crm.lead_statuses)
            opp_statuses = list(crm.opp_statuses)
            users = [u for _l, u, *_ in USER_SPECS]
            width = len(str(max(counts["leads"], 1)))
            made = {"leads": 0, "contacts": 0, "opportunities": 0}
            targets = []
            user = USER_IDS["test"]
            for i in range(1, counts["leads"] + 1):
                now = when()
                rec = crm.make_lead(crm.new_id("lead_"), "%s Lead %0*d" % (prefix, width, i), now,
                                    lead_statuses[i % len(lead_statuses)], user,
                                    custom={"custom." + CRM_CF["lead", "number"]: i})
                crm_insert_lead(store, rec)
                targets.append(rec["id"])
                made["leads"] += 1
            if lead_id is not None:
                targets.append(lead_id)
            n = 0
            for lid in targets:
                for j in range(1, counts["contacts_per_lead"] + 1):
                    n += 1
                    now = when()
                    rec = crm.make_contact(crm.new_id("cont_"), lid, "%s Contact %d" % (prefix, n), "", [], [],
                                           [], user, now, custom={"custom." + CRM_CF["contact", "number"]: j})
                    crm.add_child("contact", rec)
                    made["contacts"] += 1
                for j in range(1, counts["opportunities_per_lead"] + 1):
                    k = made["opportunities"]
                    now = when()
                    status = opp_statuses[k % len(opp_statuses)]
                    won = crm.opp_statuses[status]["type"] == "won"
                    rec = crm.make_opportunity(crm.new_id("oppo_"), lid, status, 100 * (k + 1),
                                               VALUE_PERIODS[k % 3], (10 * k) % 101, users[k % len(users)], user,
                                               now, date_won=now[:10] if won else None,
                                               custom={"custom." + CRM_CF["opportunity", "number"]: j})
                    crm.add_child("opportunity", rec)
                    made["opportunities"] += 1
        return 200, {"created": made}, "application/json"

    def ctl_crm_data(self, req):
        """GET /_emulator/data/crm?type=lead|contact|opportunity[&lead_id=L]: records as stored."""
        otype = req.param("type")
        if otype not in CRM_TYPES:
            raise E.ApiError(400, E.field_errors({"type": "Must be lead, contact or opportunity."}))
        lead_id = req.param("lead_id")
        with self.store.lock:
            crm = self.store.crm
            if otype == "lead":
                recs = [crm.lead_view(r) for r in self.store.lead_order
                        if lead_id is None or r["id"] == lead_id]
            else:
                index = crm.contacts_by_lead if otype == "contact" else crm.opps_by_lead
                if lead_id is not None:
                    recs = [dict(r) for r in index.get(lead_id, ())]
                else:
                    recs = sorted((dict(r) for r in crm.records(otype).values()),
                                  key=lambda r: (r["date_created"], r["id"]))
        return 200, recs, "application/json"
