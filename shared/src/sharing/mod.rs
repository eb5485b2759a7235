//! Listing disclosure (California AB 723, docs/disclosure.md): share links to a public page that
//! shows each original beside its altered versions, the disclosed photo with a burned-in label,
//! and the link as a QR code.

pub mod label;
pub mod links;
pub mod page;
pub mod qr;
