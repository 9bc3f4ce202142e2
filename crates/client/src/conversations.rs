//! Conversations: what the profile knows of each, 1:1 conversations made on first send, and
//! the KeyPackages claimed (and checked against pinned keys) to create them.

use sotto_api::DeviceAddress;
use sotto_core::conversation::Member;
use sotto_core::device::expect_key_package;
use sotto_core::identity::{RootFingerprint, RootPublicKey, UserId};
use sotto_core::policy::{BurnOnRead, Policy};

use crate::client::{Client, ProfileConversation};
use crate::error::{ClientError, Result};
use crate::model::{kind, ConversationInfo};
use crate::store::Slot;

/// Longest life of a message in a new 1:1 conversation, and the default group maximum.
pub const DEFAULT_MAX_TTL: u32 = 7 * 24 * 3600;
/// The `Control` kind that carries a group's name.
pub const CONTROL_NAME: u16 = 1;
/// The `Control` kind by which a device tells the user's other devices that the user
/// leaves the conversation (no payload).
pub const CONTROL_LEAVE: u16 = 2;

/// Lower-case hex of `bytes`.
pub(crate) fn hex_id(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The delivery address of a member device.
pub(crate) fn address(member: &Member) -> DeviceAddress {
    DeviceAddress {
        username: member.identity.user.to_string(),
        device_id: member.identity.device_id.to_hex(),
    }
}

impl Client {
    /// Every conversation of this profile, most recent first.
    pub fn conversations(&self) -> Result<Vec<ConversationInfo>> {
        let conn = self.store.conn()?;
        let mut list: Vec<ConversationInfo> = self.store.list(&conn, kind::CONVERSATION, None)?;
        list.sort_by_key(|c| std::cmp::Reverse(c.joined_at));
        Ok(list)
    }

    /// The stored description of conversation `id`.
    pub fn conversation_info(&self, id: &str) -> Result<ConversationInfo> {
        let conn = self.store.conn()?;
        self.store
            .get(&conn, Slot::new(kind::CONVERSATION, &[id.as_bytes()]))?
            .ok_or_else(|| ClientError::UnknownConversation(id.into()))
    }

    /// The conversation a user means by `target`: a conversation id; `#` and a group's
    /// name or the first characters of a conversation id (at least 6), if only one
    /// matches; or a username, meaning the 1:1 conversation with that user — never a
    /// group, whatever its name. `None` if nothing matches (a user with no conversation
    /// yet, say).
    pub fn resolve(&self, target: &str) -> Result<Option<String>> {
        let all = self.conversations()?;
        if let Some(c) = all.iter().find(|c| c.id == target) {
            return Ok(Some(c.id.clone()));
        }
        if let Some(wanted) = target.strip_prefix('#') {
            let by_name: Vec<_> = all
                .iter()
                .filter(|c| c.active && !c.direct && c.name.as_deref() == Some(wanted))
                .collect();
            let by_prefix: Vec<_> = if wanted.len() >= 6 {
                all.iter().filter(|c| c.id.starts_with(wanted)).collect()
            } else {
                Vec::new()
            };
            return match (by_name.as_slice(), by_prefix.as_slice()) {
                ([one], _) | ([], [one]) => Ok(Some(one.id.clone())),
                ([], []) => Ok(None),
                _ => Err(ClientError::Invalid(format!(
                    "`{target}` matches several conversations; use more of the conversation id"
                ))),
            };
        }
        let me = self.profile.username.as_str();
        Ok(all
            .into_iter()
            .find(|c| {
                c.active
                    && c.direct
                    && c.members.iter().any(|m| m == target)
                    && c.members.iter().any(|m| m == me)
            })
            .map(|c| c.id))
    }

    /// Like [`resolve`](Self::resolve), but an unknown target is an error.
    pub fn resolve_existing(&self, target: &str) -> Result<String> {
        self.resolve(target)?
            .ok_or_else(|| ClientError::UnknownConversation(target.into()))
    }

    /// Refreshes the stored description of conversation `id` from its MLS state.
    pub(crate) fn save_info(
        &mut self,
        id: &str,
        name: Option<Option<String>>,
    ) -> Result<ConversationInfo> {
        let previous = self.conversation_info(id).ok();
        let now = self.now();
        let conversation = self.conversation(id)?;
        let members = conversation.members();
        let policy = conversation.policy().clone();
        let mut users: Vec<String> = members
            .iter()
            .map(|m| m.identity.user.to_string())
            .collect();
        users.sort();
        users.dedup();
        let mut managers: Vec<String> = members
            .iter()
            .filter(|m| policy.is_manager(&m.identity.root_fingerprint))
            .map(|m| m.identity.user.to_string())
            .collect();
        managers.sort();
        managers.dedup();
        let direct = users.len() == 2 && managers.len() == 2 && policy.managers().len() == 2;
        let info = ConversationInfo {
            id: id.to_owned(),
            name: match name {
                _ if direct => None,
                Some(n) => n,
                None => previous.as_ref().and_then(|p| p.name.clone()),
            },
            direct,
            members: users,
            managers,
            max_ttl_seconds: policy.max_ttl_seconds(),
            burn_on_read: match policy.burn_on_read() {
                BurnOnRead::Allowed => "allowed".into(),
                BurnOnRead::Required => "required".into(),
            },
            active: true,
            joined_at: previous.map(|p| p.joined_at).unwrap_or(now),
        };
        self.put_info(&info)?;
        Ok(info)
    }

    pub(crate) fn put_info(&self, info: &ConversationInfo) -> Result<()> {
        let conn = self.store.conn()?;
        self.store.put(
            &conn,
            Slot::new(kind::CONVERSATION, &[info.id.as_bytes()]),
            0,
            None,
            info,
        )
    }

    /// Fetches `user`'s account key, compares it with the pin (refusing a verified key
    /// that changed) and returns the fingerprint to expect in their KeyPackages.
    pub(crate) async fn trusted_root(&mut self, user: &str) -> Result<RootFingerprint> {
        if user == self.profile.username {
            return Ok(self.identity().root_fingerprint);
        }
        let contact = self.refresh_contact(user).await?;
        self.check_sendable(user)?;
        Ok(RootPublicKey::from_bytes(&contact.root_key)?.fingerprint())
    }

    /// Claims one KeyPackage per device of `user` (other than this device), each checked
    /// to carry a certificate of `user` under the trusted root key.
    pub(crate) async fn claim_devices(
        &mut self,
        user: &str,
        skip: &[String],
    ) -> Result<Vec<(DeviceAddress, Vec<u8>)>> {
        let root = self.trusted_root(user).await?;
        let user_id = UserId::new(user)?;
        let token = self.token().await?;
        let claimed = self.api.claim(&token, user).await?;
        let mut out = Vec::new();
        for kp in claimed.key_packages {
            let identity = expect_key_package(&kp.key_package.0, &user_id, &root).map_err(|e| {
                ClientError::Protocol(format!(
                    "the server handed out a KeyPackage for {user} that is not theirs: {e}"
                ))
            })?;
            let device_id = identity.device_id.to_hex();
            if device_id == self.profile.device_id || skip.contains(&device_id) {
                continue;
            }
            if kp.last_resort {
                tracing::debug!("claimed a last-resort KeyPackage");
            }
            out.push((
                DeviceAddress {
                    username: user.to_owned(),
                    device_id,
                },
                kp.key_package.0,
            ));
        }
        Ok(out)
    }

    /// Creates a conversation under `policy` with every device of `users` (and this user's
    /// other devices), named `name` if a group. Returns its id.
    pub(crate) async fn create_with(
        &mut self,
        policy: &Policy,
        users: &[String],
        name: Option<String>,
    ) -> Result<String> {
        let mut key_packages = Vec::new();
        let mut added = Vec::new();
        let me = self.profile.username.clone();
        // This user's other devices join too; a claim (rate-limited) only if there are any.
        let mine = self.own_devices().await?;
        let others_of_mine = mine
            .iter()
            .any(|d| d.device_id.to_hex() != self.profile.device_id);
        let claims = others_of_mine
            .then_some(&me)
            .into_iter()
            .chain(users.iter());
        for user in claims {
            for (address, kp) in self.claim_devices(user, &[]).await? {
                added.push(address);
                key_packages.push(kp);
            }
        }
        let mut conversation = self.device.create_conversation(policy)?;
        let id = hex_id(conversation.id());
        let out = conversation.add_and_remove(&key_packages, &[])?;
        self.conversations.insert(id.clone(), conversation);
        self.deliver_commit(&id, out, added, vec![], &[]).await?;
        let info = self.save_info(&id, Some(name.clone()))?;
        if let Some(name) = name {
            self.send_control(&id, CONTROL_NAME, name.into_bytes())
                .await?;
        }
        tracing::debug!(members = info.members.len(), "conversation created");
        Ok(id)
    }

    /// The 1:1 conversation with `user`, created (with both users as managers) if needed.
    pub(crate) async fn direct_conversation(&mut self, user: &str) -> Result<String> {
        if user == self.profile.username {
            return Err(ClientError::Invalid(
                "you cannot start a conversation with yourself".into(),
            ));
        }
        if let Some(id) = self.resolve(user)? {
            return Ok(id);
        }
        let theirs = self.trusted_root(user).await?;
        let mine = self.identity().root_fingerprint;
        let policy = Policy::new(vec![mine, theirs], DEFAULT_MAX_TTL, BurnOnRead::Allowed)?;
        self.create_with(&policy, &[user.to_owned()], None).await
    }

    /// Marks conversation `id` inactive and deletes its messages.
    pub(crate) fn forget_conversation(&mut self, id: &str) -> Result<()> {
        let mut info = self.conversation_info(id)?;
        info.active = false;
        self.put_info(&info)?;
        let conn = self.store.conn()?;
        self.store
            .delete_group(&conn, kind::MESSAGE, &[id.as_bytes()])?;
        self.store
            .delete_group(&conn, crate::messaging::ATTACHMENT_DATA, &[id.as_bytes()])?;
        // Its MLS state goes too: the keys of a conversation left are of no further use.
        if let Ok(raw) = hex::decode(id) {
            crate::mls_store::forget_group(&self.store, &conn, &raw)?;
        }
        crate::store::checkpoint(&conn)?;
        drop(conn);
        self.conversations.remove(id);
        Ok(())
    }

    /// The policy acknowledgment every send needs.
    pub(crate) fn require_policy(&self) -> Result<()> {
        if self.policy_accepted() {
            Ok(())
        } else {
            Err(ClientError::PolicyNotAccepted)
        }
    }

    /// A conversation, loaded, for the SDK's own users (bots) that need MLS details.
    pub fn mls_conversation(&mut self, id: &str) -> Result<&mut ProfileConversation> {
        self.conversation(id)
    }
}
