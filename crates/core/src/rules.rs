//! The membership rule every Sotto client enforces, as `mls-rs` [`MlsRules`].
//!
//! `mls-rs` calls [`SottoMlsRules::filter_proposals`] both when this client prepares a
//! commit and when it receives one, with the committer and the group context before the
//! commit. The rule:
//!
//! * a commit must come from a current member: external joins (external commits) are refused;
//! * adding a device is allowed if the committer is a manager, or if the new device
//!   belongs to the committer's own user (same user id and root key) — a user's trusted
//!   device bringing in that user's newly certified device;
//! * removing a device is allowed if the committer is a manager, if the device belongs to
//!   the committer's own user, or if the removed device itself proposed its removal (leaving);
//! * changing the group-context extensions (the Sotto policy) is allowed only to a manager,
//!   and the new extensions must carry a valid policy;
//! * pre-shared keys, re-initialisation, external-init and custom proposals are refused.
//!
//! Commits always carry an update path (post-compromise security), handshake messages are
//! encrypted, and every encrypted message is padded (see [`SottoMlsRules::encryption_options`]).

use mls_rs::{
    client_builder::PaddingMode,
    group::{
        proposal::{AddProposal, RemoveProposal},
        GroupContext, Roster, Sender,
    },
    mls_rules::{
        CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle,
        ProposalSource,
    },
    ExtensionList, MlsRules,
};
use mls_rs_core::error::IntoAnyError;

use crate::identity::{DeviceIdentity, IdentityError};
use crate::identity_provider::device_identity;
use crate::policy::{Policy, PolicyError};

/// Why a commit was refused by the membership rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Someone tried to join without being added by a member.
    #[error("external joins are not allowed in Sotto conversations")]
    ExternalJoin,
    /// A non-manager tried to add another user's device.
    #[error("only a manager may add another user's device")]
    AddNotAllowed,
    /// A non-manager tried to remove another user's device.
    #[error("only a manager may remove another user's device")]
    RemoveNotAllowed,
    /// A non-manager tried to change the policy.
    #[error("only a manager may change the conversation's policy")]
    PolicyChangeNotAllowed,
    /// A proposal type Sotto never uses.
    #[error("proposal type not allowed in Sotto conversations")]
    ProposalNotAllowed,
    /// The current or proposed policy is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A certificate in the roster or a KeyPackage is invalid. (The display starts with
    /// [`IDENTITY_ERROR_PREFIX`], which is how [`crate::conversation`] tells it apart after
    /// `mls-rs` has boxed it.)
    #[error("invalid identity: {0}")]
    Identity(#[from] IdentityError),
    /// A proposal sent by someone who is not a member (e.g. a "new member" proposal).
    #[error("proposals from non-members are not allowed")]
    NonMemberProposal,
    /// A member index that is not in the roster.
    #[error("unknown member")]
    UnknownMember,
}

/// Prefix of the display of [`RuleError::Identity`].
pub const IDENTITY_ERROR_PREFIX: &str = "invalid identity: ";

impl IntoAnyError for RuleError {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

/// Sotto's [`MlsRules`]: the manager-only membership rule, mandatory update paths,
/// encrypted handshakes and padding.
#[derive(Debug, Clone, Copy, Default)]
pub struct SottoMlsRules;

/// Keeps a proposal that passed, and for one that failed either aborts the commit (received,
/// or our own by-value proposal) or drops it (someone else's by-reference proposal while we
/// prepare our commit, so that a bad proposal cannot stop the group from committing).
fn keep_or(
    direction: CommitDirection,
    source: &ProposalSource,
    verdict: Result<(), RuleError>,
) -> Result<bool, RuleError> {
    let by_reference = !matches!(source, ProposalSource::ByValue | ProposalSource::Local);
    match verdict {
        Ok(()) => Ok(true),
        Err(_) if direction == CommitDirection::Send && by_reference => Ok(false),
        Err(e) => Err(e),
    }
}

/// A member acting on the group: the committer, or the member who sent a proposal by
/// reference. Both must hold the authority a proposal needs.
struct Actor {
    identity: DeviceIdentity,
    index: u32,
    is_manager: bool,
}

impl Actor {
    fn at(roster: &Roster, policy: &Policy, index: u32) -> Result<Self, RuleError> {
        let member = roster
            .member_with_index(index)
            .map_err(|_| RuleError::UnknownMember)?;
        let identity = device_identity(&member.signing_identity)?;
        Ok(Self {
            is_manager: policy.is_manager(&identity.root_fingerprint),
            identity,
            index,
        })
    }

    fn may_touch(&self, device: &DeviceIdentity) -> bool {
        self.is_manager || self.identity.same_user(device)
    }
}

/// The sender of a proposal sent by reference, whose authority is needed as well as the
/// committer's; `None` for proposals by value or from the committer itself. The sender must
/// be a current member: a non-member's "add me" proposal is never accepted, whoever
/// commits it.
fn proposer(
    committer: &Actor,
    sender: &Sender,
    source: &ProposalSource,
    roster: &Roster,
    policy: &Policy,
) -> Result<Option<Actor>, RuleError> {
    if matches!(source, ProposalSource::ByValue | ProposalSource::Local) {
        return Ok(None);
    }
    match sender {
        Sender::Member(i) if *i == committer.index => Ok(None),
        Sender::Member(i) => Actor::at(roster, policy, *i).map(Some),
        _ => Err(RuleError::NonMemberProposal),
    }
}

impl MlsRules for SottoMlsRules {
    type Error = RuleError;

    fn filter_proposals(
        &self,
        direction: CommitDirection,
        source: CommitSource,
        roster: &Roster,
        current_context: &GroupContext,
        mut proposals: ProposalBundle,
    ) -> Result<ProposalBundle, Self::Error> {
        let CommitSource::ExistingMember(member) = source else {
            return Err(RuleError::ExternalJoin);
        };
        let policy = Policy::from_extensions(&current_context.extensions)?;
        let committer = Actor::at(roster, &policy, member.index)?;

        if !proposals.psk_proposals().is_empty()
            || !proposals.reinit_proposals().is_empty()
            || !proposals.external_init_proposals().is_empty()
            || !proposals.custom_proposals().is_empty()
        {
            return Err(RuleError::ProposalNotAllowed);
        }

        proposals.retain_by_type::<AddProposal, _, _>(|p| {
            let verdict = (|| {
                let added = device_identity(p.proposal.signing_identity())?;
                let proposer = proposer(&committer, p.sender(), p.source(), roster, &policy)?;
                if committer.may_touch(&added) && proposer.is_none_or(|a| a.may_touch(&added)) {
                    Ok(())
                } else {
                    Err(RuleError::AddNotAllowed)
                }
            })();
            keep_or(direction, p.source(), verdict)
        })?;

        proposals.retain_by_type::<RemoveProposal, _, _>(|p| {
            let verdict = (|| {
                let target = p.proposal.to_remove();
                // A member asking for its own removal (leaving) may be committed by anyone.
                if *p.sender() == Sender::Member(target) && target != committer.index {
                    return Ok(());
                }
                let removed = Actor::at(roster, &policy, target)?.identity;
                let proposer = proposer(&committer, p.sender(), p.source(), roster, &policy)?;
                if committer.may_touch(&removed) && proposer.is_none_or(|a| a.may_touch(&removed)) {
                    Ok(())
                } else {
                    Err(RuleError::RemoveNotAllowed)
                }
            })();
            keep_or(direction, p.source(), verdict)
        })?;

        proposals.retain_by_type::<ExtensionList, _, _>(|p| {
            let verdict = (|| {
                let proposer = proposer(&committer, p.sender(), p.source(), roster, &policy)?;
                if !(committer.is_manager && proposer.is_none_or(|a| a.is_manager)) {
                    return Err(RuleError::PolicyChangeNotAllowed);
                }
                Policy::from_extensions(&p.proposal)?;
                Ok(())
            })();
            keep_or(direction, p.source(), verdict)
        })?;

        Ok(proposals)
    }

    fn commit_options(
        &self,
        _new_roster: &Roster,
        _new_context: &GroupContext,
        _proposals: &ProposalBundle,
    ) -> Result<CommitOptions, Self::Error> {
        Ok(CommitOptions::new()
            .with_path_required(true)
            .with_ratchet_tree_extension(true)
            .with_single_welcome_message(true)
            .with_allow_external_commit(false))
    }

    fn encryption_options(
        &self,
        _current_roster: &Roster,
        _current_context: &GroupContext,
    ) -> Result<EncryptionOptions, Self::Error> {
        Ok(EncryptionOptions::new(true, PaddingMode::StepFunction))
    }
}
