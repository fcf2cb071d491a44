//! `keys import`: keys from the systems keyseal replaces, imported without reissuing them.
//! One parser per input (`jsonl`, `egregore`, `keycloak`), each into `ImportedKey`s with the
//! place each came from; `input` holds what they share.

pub mod egregore;
mod input;
pub mod jsonl;
pub mod keycloak;

// Until the library's import lands: the same shape.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    pub source_id: Option<String>,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub tag: String,
    pub lookup: Option<String>,
    pub bcrypt_hash: String,
    pub expires_at: Option<keyseal::Timestamp>,
    pub enabled: bool,
    pub created_at: Option<keyseal::Timestamp>,
    pub last_used_at: Option<keyseal::Timestamp>,
    pub rate_limit: Option<keyseal::RateLimit>,
}
