"""second factors, recovery codes, account events, known devices, verified contacts, lockout

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_verified_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('email_verified_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('password_credentials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_at', sa.DateTime(), nullable=True))

    op.create_table('totp_credentials',
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('failed_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_totp_credentials_identity_id_identities')),
    sa.PrimaryKeyConstraint('identity_id', name=op.f('pk_totp_credentials'))
    )
    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_recovery_codes_identity_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_identity_id'), ['identity_id'], unique=False)

    op.create_table('account_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_account_events_identity_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_events'))
    )
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_events_at'), ['at'], unique=False)
        batch_op.create_index('ix_account_events_identity_at', ['identity_id', 'at'], unique=False)

    op.create_table('known_devices',
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('device_digest', sa.String(length=64), nullable=False),
    sa.Column('first_seen', sa.DateTime(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_known_devices_identity_id_identities')),
    sa.PrimaryKeyConstraint('identity_id', 'device_digest', name=op.f('pk_known_devices'))
    )


def downgrade():
    op.drop_table('known_devices')
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.drop_index('ix_account_events_identity_at')
        batch_op.drop_index(batch_op.f('ix_account_events_at'))
    op.drop_table('account_events')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_identity_id'))
    op.drop_table('recovery_codes')
    op.drop_table('totp_credentials')
    with op.batch_alter_table('password_credentials', schema=None) as batch_op:
        batch_op.drop_column('locked_at')
        batch_op.drop_column('failed_count')
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_column('email_verified_at')
        batch_op.drop_column('phone_verified_at')
