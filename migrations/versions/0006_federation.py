"""federation upstream providers

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('upstream_providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('button_label', sa.String(length=200), nullable=True),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('metadata_json', sa.JSON(), nullable=False),
    sa.Column('metadata_fetched_at', sa.DateTime(), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret_encrypted', sa.Text(), nullable=False),
    sa.Column('token_auth_method', sa.String(length=40), nullable=False),
    sa.Column('scopes', sa.String(length=500), nullable=False),
    sa.Column('authorize_params', sa.JSON(), nullable=False),
    sa.Column('claim_mapping', sa.JSON(), nullable=False),
    sa.Column('acr_mapping', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstream_providers')),
    sa.UniqueConstraint('issuer', name=op.f('uq_upstream_providers_issuer')),
    sa.UniqueConstraint('slug', name=op.f('uq_upstream_providers_slug'))
    )
    op.create_table('upstream_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=False),
    sa.Column('provider_slug', sa.String(length=40), nullable=False),
    sa.Column('linked_at', sa.DateTime(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(), nullable=True),
    sa.Column('verified_level', sa.SmallInteger(), nullable=True),
    sa.Column('verified_acr', sa.String(length=200), nullable=True),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_upstream_links_identity_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstream_links')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_upstream_links_issuer'))
    )
    with op.batch_alter_table('upstream_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_links_identity_id'), ['identity_id'], unique=False)

    op.create_table('federation_conflicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_slug', sa.String(length=40), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('identity_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('claims', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolution', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['identity_id'], ['identities.id'], name=op.f('fk_federation_conflicts_identity_id_identities')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_federation_conflicts'))
    )
    with op.batch_alter_table('federation_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_federation_conflicts_identity_id'), ['identity_id'], unique=False)
        batch_op.create_index('ix_federation_conflicts_open', ['resolved_at', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('federation_conflicts', schema=None) as batch_op:
        batch_op.drop_index('ix_federation_conflicts_open')
        batch_op.drop_index(batch_op.f('ix_federation_conflicts_identity_id'))

    op.drop_table('federation_conflicts')
    with op.batch_alter_table('upstream_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_links_identity_id'))

    op.drop_table('upstream_links')
    op.drop_table('upstream_providers')
