//! The environment a student process gets: a small allow-list, nothing inherited beyond it, so
//! secrets in the grader's environment (CI tokens and the like) never reach student code.

use std::path::Path;

/// Builds the scrubbed environment. `classchat` holds the CLASSCHAT_* values for this launch.
pub fn scrubbed(home: &Path, classchat: &[(&str, String)]) -> Vec<(String, String)> {
    let path = std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
    let mut env = vec![
        ("PATH".to_string(), path),
        ("HOME".to_string(), home.display().to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("TERM".to_string(), "dumb".to_string()),
        ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
    ];
    env.extend(classchat.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_names() {
        let env = scrubbed(Path::new("/tmp/x"), &[("CLASSCHAT_PORT", "1".into())]);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "PATH",
                "HOME",
                "LANG",
                "TERM",
                "PYTHONUNBUFFERED",
                "CLASSCHAT_PORT"
            ]
        );
    }
}
