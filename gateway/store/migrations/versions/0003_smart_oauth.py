"""SMART authorization server: OAuth clients, codes, refresh and access tokens, assertion jti, EHR launches

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 23:46:23.438685
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import gateway.store.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('_OAuthAssertionJti',
    sa.Column('clientId', sa.String(length=128), nullable=False),
    sa.Column('jti', sa.String(length=255), nullable=False),
    sa.Column('expiresAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('clientId', 'jti')
    )
    op.create_table('_OAuthClient',
    sa.Column('clientId', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('clientType', sa.String(length=32), nullable=False),
    sa.Column('secretHash', sa.String(length=64), nullable=True),
    sa.Column('redirectUris', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('jwks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('jwksUrl', sa.String(length=1024), nullable=True),
    sa.Column('createdAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('isActive', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('clientId')
    )
    op.create_table('_OAuthAccessToken',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('grantId', sa.String(length=32), nullable=True),
    sa.Column('clientId', sa.String(length=128), nullable=False),
    sa.Column('user', sa.String(length=32), nullable=True),
    sa.Column('createdAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expiresAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revokedAt', gateway.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clientId'], ['_OAuthClient.clientId'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user'], ['_User.objectId'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('jti')
    )
    with op.batch_alter_table('_OAuthAccessToken', schema=None) as batch_op:
        batch_op.create_index('ix_oauthaccess_grant', ['grantId'], unique=False)

    op.create_table('_OAuthCode',
    sa.Column('codeHash', sa.String(length=64), nullable=False),
    sa.Column('clientId', sa.String(length=128), nullable=False),
    sa.Column('redirectUri', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('user', sa.String(length=32), nullable=False),
    sa.Column('patient', sa.String(length=32), nullable=True),
    sa.Column('fhirUser', sa.String(length=128), nullable=True),
    sa.Column('nonce', sa.String(length=255), nullable=True),
    sa.Column('codeChallenge', sa.String(length=128), nullable=False),
    sa.Column('codeChallengeMethod', sa.String(length=8), nullable=False),
    sa.Column('needPatientBanner', sa.Boolean(), nullable=False),
    sa.Column('grantId', sa.String(length=32), nullable=False),
    sa.Column('createdAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expiresAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('usedAt', gateway.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clientId'], ['_OAuthClient.clientId'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user'], ['_User.objectId'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('codeHash')
    )
    op.create_table('_OAuthRefreshToken',
    sa.Column('tokenHash', sa.String(length=64), nullable=False),
    sa.Column('grantId', sa.String(length=32), nullable=False),
    sa.Column('clientId', sa.String(length=128), nullable=False),
    sa.Column('user', sa.String(length=32), nullable=False),
    sa.Column('patient', sa.String(length=32), nullable=True),
    sa.Column('fhirUser', sa.String(length=128), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('needPatientBanner', sa.Boolean(), nullable=False),
    sa.Column('createdAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expiresAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('rotatedAt', gateway.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revokedAt', gateway.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clientId'], ['_OAuthClient.clientId'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user'], ['_User.objectId'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tokenHash')
    )
    with op.batch_alter_table('_OAuthRefreshToken', schema=None) as batch_op:
        batch_op.create_index('ix_oauthrefresh_grant', ['grantId'], unique=False)

    op.create_table('_SmartLaunch',
    sa.Column('launchHash', sa.String(length=64), nullable=False),
    sa.Column('patient', sa.String(length=32), nullable=False),
    sa.Column('issuedBy', sa.String(length=255), nullable=True),
    sa.Column('createdAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expiresAt', gateway.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('usedAt', gateway.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient'], ['PatientProfile.objectId'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('launchHash')
    )


def downgrade() -> None:
    op.drop_table('_SmartLaunch')
    with op.batch_alter_table('_OAuthRefreshToken', schema=None) as batch_op:
        batch_op.drop_index('ix_oauthrefresh_grant')

    op.drop_table('_OAuthRefreshToken')
    op.drop_table('_OAuthCode')
    with op.batch_alter_table('_OAuthAccessToken', schema=None) as batch_op:
        batch_op.drop_index('ix_oauthaccess_grant')

    op.drop_table('_OAuthAccessToken')
    op.drop_table('_OAuthClient')
    op.drop_table('_OAuthAssertionJti')
