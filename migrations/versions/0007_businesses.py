"""businesses and representation

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Business profiles, representations (legal representatives and authorizations), self-service
registration requests, and refresh_tokens.acting_for (the business a grant acts for). Safe
beside the previous release: new tables and one nullable column.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

LEGAL_FORMS = ('llc_single_member', 'llc_multi_member', 'joint_stock', 'partnership',
               'private_enterprise', 'cooperative', 'household_business', 'branch',
               'representative_office', 'business_location', 'other')


def upgrade():
    op.create_table('business_profiles',
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('legal_form', sa.Enum(*LEGAL_FORMS, name='legal_form', native_enum=False, length=32), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('business_status', sa.Enum('active', 'suspended', 'dissolved', name='business_status', native_enum=False, length=32), nullable=False),
    sa.Column('parent_identity_id', sa.Uuid(), nullable=True),
    sa.Column('verification', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_business_profiles_identity_id_identities')),
    sa.ForeignKeyConstraint(['parent_identity_id'], ['identities.id'], name=op.f('fk_business_profiles_parent_identity_id_identities')),
    sa.PrimaryKeyConstraint('identity_id', name=op.f('pk_business_profiles'))
    )
    with op.batch_alter_table('business_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_business_profiles_parent_identity_id'), ['parent_identity_id'], unique=False)

    op.create_table('representations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('business_id', sa.Uuid(), nullable=False),
    sa.Column('representative_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.Enum('legal_representative', 'authorized', name='representation_role', native_enum=False, length=32), nullable=False),
    sa.Column('client_ids', sa.JSON(), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=True),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('valid_to', sa.DateTime(), nullable=True),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.Column('granted_by', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by', sa.String(length=100), nullable=True),
    sa.Column('revoke_reason', sa.String(length=300), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_representations_valid_period')),
    sa.CheckConstraint('(revoked_at IS NULL) = (revoked_by IS NULL)', name=op.f('ck_representations_revoked_has_actor')),
    sa.ForeignKeyConstraint(['business_id'], ['identities.id'], name=op.f('fk_representations_business_id_identities')),
    sa.ForeignKeyConstraint(['representative_id'], ['identities.id'], name=op.f('fk_representations_representative_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_representations'))
    )
    with op.batch_alter_table('representations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_representations_business_id'), ['business_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_representations_representative_id'), ['representative_id'], unique=False)
        batch_op.create_index('uq_representations_open', ['business_id', 'representative_id'], unique=True, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))

    op.create_table('business_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Uuid(), nullable=False),
    sa.Column('tax_code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('legal_form', sa.Enum(*LEGAL_FORMS, name='legal_form', native_enum=False, length=32), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='business_request_status', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decision_reason', sa.String(length=300), nullable=True),
    sa.Column('business_identity_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['business_identity_id'], ['identities.id'], name=op.f('fk_business_requests_business_identity_id_identities')),
    sa.ForeignKeyConstraint(['requester_id'], ['identities.id'], name=op.f('fk_business_requests_requester_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_requests'))
    )
    with op.batch_alter_table('business_requests', schema=None) as batch_op:
        batch_op.create_index('ix_business_requests_status', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_business_requests_requester_id'), ['requester_id'], unique=False)

    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acting_for', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_refresh_tokens_acting_for_identities'), 'identities', ['acting_for'], ['id'])


def downgrade():
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_refresh_tokens_acting_for_identities'), type_='foreignkey')
        batch_op.drop_column('acting_for')

    with op.batch_alter_table('business_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_business_requests_requester_id'))
        batch_op.drop_index('ix_business_requests_status')
    op.drop_table('business_requests')

    with op.batch_alter_table('representations', schema=None) as batch_op:
        batch_op.drop_index('uq_representations_open', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_representations_representative_id'))
        batch_op.drop_index(batch_op.f('ix_representations_business_id'))
    op.drop_table('representations')

    with op.batch_alter_table('business_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_business_profiles_parent_identity_id'))
    op.drop_table('business_profiles')
