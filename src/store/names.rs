//! Validation of checkpoint names and container ids (stub).
use super::StoreError;

pub fn validate_checkpoint_name(name: &str) -> Result<(), StoreError> {
    let _ = name;
    Ok(())
}

pub fn validate_container_id(id: &str) -> Result<(), StoreError> {
    let _ = id;
    Ok(())
}
