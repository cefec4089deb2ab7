//! Attachments: what an uploaded file is and the picture work on the four inline image
//! kinds (`sniff`, `picture`: pure functions over bytes and paths), and how files travel
//! and are kept: uploads streamed to disk (`upload`, `http_upload`, `limits`, `names`,
//! `ids`), the processing pool (`process`), the files directory (`storage`), the in-memory
//! index the hub and the file server consult (`index`), serving (`serve`) and backup.

pub mod backup;
pub mod http_upload;
pub mod ids;
pub mod index;
pub mod limits;
pub mod names;
pub mod picture;
pub mod process;
pub mod serve;
pub mod sniff;
pub mod storage;
pub mod upload;
