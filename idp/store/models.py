"""Tables of the embedded store (used when no Redis is configured)."""

from idp.extensions import db


class StoreEntry(db.Model):
    __tablename__ = "store_entries"

    key = db.Column(db.String(255), primary_key=True)
    value = db.Column(db.Text, nullable=False)
    expires_at = db.Column(db.Float, nullable=False, index=True)


class StoreSetMember(db.Model):
    __tablename__ = "store_set_members"

    key = db.Column(db.String(255), primary_key=True)
    member = db.Column(db.String(255), primary_key=True)
    expires_at = db.Column(db.Float, nullable=False, index=True)
