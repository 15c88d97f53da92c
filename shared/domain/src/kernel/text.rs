//! Free text a user names things with: display names and long settings.

use crate::kernel::error::ValidationError;

/// A display name (`name`): 1 to `max` characters, trimmed, no control characters.
pub(crate) fn display_name(raw: &str, max: usize) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new("name", "empty", "must not be empty"));
    }
    // Counted before trimming, as the API document's maxLength counts it.
    if raw.chars().count() > max {
        return Err(ValidationError::new("name", "too_long", format!("must be at most {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new("name", "invalid_character", "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A free-text setting (`first_message`, `system_prompt`): at most `max` characters, no NUL.
pub fn parse_text(field: &str, raw: Option<&str>, max: usize) -> Result<Option<String>, ValidationError> {
    match raw {
        None => Ok(None),
        Some(t) if t.chars().count() > max => Err(ValidationError::new(field, "too_long", format!("must be at most {max} characters"))),
        Some(t) if t.contains('\0') => Err(ValidationError::new(field, "invalid_character", "must not contain NUL")),
        Some(t) => Ok(Some(t.to_owned())),
    }
}
