//! Contacts: root keys pinned on first use, safety numbers, verification, and key changes.
//!
//! The first root key seen for a user (from the server's directory, or in a conversation)
//! is pinned. Every later sighting is compared with the pin: a different key is recorded
//! as a change and reported to the user. For a contact the user verified (compared safety
//! numbers and confirmed), a change blocks sending to them until they verify again — the
//! mitigation of the key-server caveat (a compromised server handing out its own key).

use sotto_core::identity::RootPublicKey;
use sotto_core::safety::{safety_number, SafetyNumber};

use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::model::{kind, Contact};
use crate::store::Slot;

/// A contact's safety number with this user, and its QR payload.
#[derive(Debug, Clone)]
pub struct Safety {
    /// The contact.
    pub username: String,
    /// The number, from the key currently seen for them (the changed key, if any).
    pub number: SafetyNumber,
    /// Whether the user verified the contact (and the key did not change since).
    pub verified: bool,
    /// Whether their key changed since it was pinned or verified.
    pub changed: bool,
}

impl Client {
    /// The stored contact `username`, if any.
    pub fn contact(&self, username: &str) -> Result<Option<Contact>> {
        let conn = self.store.conn()?;
        self.store
            .get(&conn, Slot::new(kind::CONTACT, &[username.as_bytes()]))
    }

    /// Every stored contact.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        let conn = self.store.conn()?;
        self.store.list(&conn, kind::CONTACT, None)
    }

    pub(crate) fn save_contact(&self, contact: &Contact) -> Result<()> {
        let conn = self.store.conn()?;
        self.store.put(
            &conn,
            Slot::new(kind::CONTACT, &[contact.username.as_bytes()]),
            0,
            None,
            contact,
        )
    }

    /// Compares a root key seen for `username` with the pin. Pins it on first sight;
    /// records (and reports, as a notice) a change. Returns the contact as now stored.
    pub(crate) fn observe_root_key(&self, username: &str, root_key: &[u8]) -> Result<Contact> {
        if username == self.profile.username {
            return Ok(Contact {
                username: username.into(),
                root_key: root_key.to_vec(),
                verified: true,
                changed_root_key: None,
            });
        }
        let contact = match self.contact(username)? {
            None => Contact {
                username: username.to_owned(),
                root_key: root_key.to_vec(),
                verified: false,
                changed_root_key: None,
            },
            Some(c) if c.root_key == root_key => return Ok(c),
            Some(c) if c.changed_root_key.as_deref() == Some(root_key) => return Ok(c),
            Some(mut c) => {
                if c.verified {
                    self.notice(format!(
                        "the account key of {username} changed since you verified it (a new \
                         installation, or someone impersonating them). Sending to them is \
                         blocked until you verify the new safety number."
                    ))?;
                    c.changed_root_key = Some(root_key.to_vec());
                } else {
                    // Not verified: the new key replaces the pin (trust on first use), and
                    // the user is told to compare safety numbers.
                    self.notice(format!(
                        "the account key of {username} changed (a new installation, or \
                         someone impersonating them); compare safety numbers with them \
                         (`sotto verify {username}`)."
                    ))?;
                    c.root_key = root_key.to_vec();
                }
                c
            }
        };
        self.save_contact(&contact)?;
        Ok(contact)
    }

    /// Refuses if sending to `username` is blocked by a verified key that changed.
    pub(crate) fn check_sendable(&self, username: &str) -> Result<()> {
        match self.contact(username)? {
            Some(c) if c.verified && c.changed_root_key.is_some() => {
                Err(ClientError::VerifiedKeyChanged {
                    user: username.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Fetches `username`'s account key from the server and compares it with the pin.
    /// If the server serves the pinned key again after a change, the change is cleared
    /// (sends are still checked device by device, see [`Client::check_members`]).
    pub async fn refresh_contact(&mut self, username: &str) -> Result<Contact> {
        Ok(self.directory_key(username).await?.0)
    }

    /// The contact as now stored, and the root key the server serves for them.
    async fn directory_key(&mut self, username: &str) -> Result<(Contact, Vec<u8>)> {
        let account = self.api.account(username).await?;
        RootPublicKey::from_bytes(&account.root_public_key.0)?;
        let served = account.root_public_key.0;
        let mut contact = self.observe_root_key(username, &served)?;
        if contact.root_key == served && contact.changed_root_key.is_some() {
            contact.changed_root_key = None;
            self.save_contact(&contact)?;
            self.notice(format!(
                "the server again shows the account key of {username} that you verified"
            ))?;
        }
        Ok((contact, served))
    }

    /// Refuses if a member device of conversation `id` belongs to a verified contact under
    /// a root key other than the verified one.
    pub(crate) fn check_members(&mut self, id: &str) -> Result<()> {
        let me = self.profile.username.clone();
        let members = self.conversation(id)?.members();
        for member in members.iter().filter(|m| m.identity.user.as_str() != me) {
            let user = member.identity.user.as_str();
            self.check_sendable(user)?;
            if let Some(contact) = self.contact(user)? {
                if contact.verified && contact.root_key != member.identity.root_key.as_bytes() {
                    return Err(ClientError::VerifiedKeyChanged {
                        user: user.to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The safety number with `username` for the key the server now serves for them
    /// (pinned if not yet a contact).
    pub async fn safety(&mut self, username: &str) -> Result<Safety> {
        Ok(self.safety_and_key(username).await?.0)
    }

    /// The safety number, and the one key it was computed from.
    async fn safety_and_key(&mut self, username: &str) -> Result<(Safety, Vec<u8>)> {
        if username == self.profile.username {
            return Err(ClientError::Invalid(
                "a safety number is for another user, not yourself".into(),
            ));
        }
        let (contact, served) = self.directory_key(username).await?;
        let number = safety_number(
            &self.profile.username,
            self.identity().root_key.as_bytes(),
            username,
            &served,
        )
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
        let changed = contact.root_key != served || contact.changed_root_key.is_some();
        let safety = Safety {
            username: username.to_owned(),
            number,
            verified: contact.verified && !changed,
            changed,
        };
        Ok((safety, served))
    }

    /// Marks `username` verified if `typed` is the safety number of the key the server
    /// serves for them now; exactly the key the number was computed from is pinned.
    pub async fn verify(&mut self, username: &str, typed: &str) -> Result<Safety> {
        let (safety, served) = self.safety_and_key(username).await?;
        if !safety.number.matches(typed) {
            return Err(ClientError::SafetyNumberMismatch(username.to_owned()));
        }
        let contact = Contact {
            username: username.to_owned(),
            root_key: served,
            verified: true,
            changed_root_key: None,
        };
        self.save_contact(&contact)?;
        Ok(Safety {
            verified: true,
            changed: false,
            ..safety
        })
    }
}
