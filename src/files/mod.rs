//! Attachments: what papo keeps of uploaded files and how they travel.
pub mod backup;
pub mod http_upload;
pub mod ids;
pub mod index;
pub mod limits;
pub mod names;
pub mod process;
pub mod serve;
pub mod storage;
pub mod upload;
