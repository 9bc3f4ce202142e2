//! Groups: creating one, adding and removing members (managers only), and leaving.

use sotto_api::DeviceAddress;
use sotto_core::conversation::Member;
use sotto_core::policy::{BurnOnRead, Policy};

use crate::client::Client;
use crate::conversations::{address, CONTROL_LEAVE, CONTROL_NAME};
use crate::error::{ClientError, Result};
use crate::model::ConversationInfo;

/// What a new group looks like.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Its name.
    pub name: String,
    /// The other users to add.
    pub members: Vec<String>,
    /// Longest message life, seconds.
    pub max_ttl_seconds: u32,
    /// Whether every message must burn on read.
    pub burn_on_read_required: bool,
}

impl Client {
    /// Creates a group managed by this user.
    pub async fn create_group(&mut self, spec: GroupSpec) -> Result<ConversationInfo> {
        self.require_policy()?;
        let burn = if spec.burn_on_read_required {
            BurnOnRead::Required
        } else {
            BurnOnRead::Allowed
        };
        let policy = Policy::new(
            vec![self.identity().root_fingerprint],
            spec.max_ttl_seconds,
            burn,
        )?;
        let mut members = spec.members.clone();
        members.retain(|m| m != &self.profile.username);
        members.sort();
        members.dedup();
        let id = self.create_with(&policy, &members, Some(spec.name)).await?;
        self.conversation_info(&id)
    }

    fn require_manager(&mut self, id: &str) -> Result<()> {
        let fingerprint = self.identity().root_fingerprint;
        if !self.conversation(id)?.policy().is_manager(&fingerprint) {
            return Err(ClientError::NotAManager);
        }
        Ok(())
    }

    /// Adds every device of `user` to group `id` (managers only).
    pub async fn add_member(&mut self, id: &str, user: &str) -> Result<ConversationInfo> {
        self.require_policy()?;
        self.catch_up().await?;
        self.require_manager(id)?;
        let present: Vec<String> = self
            .conversation(id)?
            .members()
            .iter()
            .map(|m| m.identity.device_id.to_hex())
            .collect();
        let claimed = self.claim_devices(user, &present).await?;
        if claimed.is_empty() {
            return Err(ClientError::Invalid(format!(
                "{user} has no device that could be added"
            )));
        }
        let (added, key_packages): (Vec<_>, Vec<_>) = claimed.into_iter().unzip();
        let out = self.conversation(id)?.add_and_remove(&key_packages, &[])?;
        self.deliver_commit(id, out, added, vec![], &[]).await?;
        let info = self.save_info(id, None)?;
        if let Some(name) = info.name.clone() {
            self.send_control(id, CONTROL_NAME, name.into_bytes())
                .await?;
        }
        Ok(info)
    }

    /// Removes every device of `user` from group `id` (managers only).
    pub async fn remove_member(&mut self, id: &str, user: &str) -> Result<ConversationInfo> {
        self.require_policy()?;
        self.catch_up().await?;
        self.require_manager(id)?;
        let members = self.conversation(id)?.members();
        let targets: Vec<&Member> = members
            .iter()
            .filter(|m| m.identity.user.as_str() == user)
            .collect();
        if targets.is_empty() {
            return Err(ClientError::NotAMember {
                user: user.into(),
                conversation: id.into(),
            });
        }
        let indexes: Vec<u32> = targets.iter().map(|m| m.index).collect();
        let removed: Vec<DeviceAddress> = targets.iter().map(|m| address(m)).collect();
        let out = self.conversation(id)?.add_and_remove(&[], &indexes)?;
        self.deliver_commit(id, out, vec![], removed, &[]).await?;
        self.save_info(id, None)
    }

    /// Leaves conversation `id`: asks the others to remove this device (any member's next
    /// sync commits it) and forgets the conversation's messages here.
    /// The user leaves, not just this device: the user's other devices leave too when
    /// they see this device's notice (a `Control` of kind 2), so that none of them adds
    /// this device back.
    pub async fn leave(&mut self, id: &str) -> Result<()> {
        // The request must be for the current epoch, or the others cannot process it.
        self.catch_up().await?;
        self.leave_now(id).await
    }

    /// Leaves without processing the inbox first (during a sync).
    pub(crate) async fn leave_now(&mut self, id: &str) -> Result<()> {
        self.send_control(id, CONTROL_LEAVE, Vec::new()).await?;
        let proposal = self.conversation(id)?.propose_leave()?;
        self.conversation(id)?.persist()?;
        self.send_payload(id, proposal).await?;
        self.forget_conversation(id)
    }
}
