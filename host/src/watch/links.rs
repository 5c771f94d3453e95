//! Every path a file is reached through when symlinks are followed, so that
//! the watcher sees a change to any link on the way, not only to the file.
//!
//! A Kubernetes ConfigMap is mounted as `cfg/ferrygate.toml ->
//! ..data/ferrygate.toml` and `..data -> ..2026_v1/`; an update writes a new
//! folder and renames a new `..data` link over the old one. Neither the file
//! nor its folder changes: only a link two steps away does. Owns only path
//! arithmetic and `readlink`; it never watches anything itself.

use std::path::{Component, Path, PathBuf};

/// Most links followed for one path, as the kernel's `MAXSYMLINKS` (40):
/// beyond it a chain is a loop.
const MAX_LINKS: usize = 40;

/// `path` itself, then the path after each link on the way is replaced by
/// its target, up to the real file. A link that cannot be read ends the
/// chain where it is (the file is then missing, which the reload reports).
pub(super) fn chain(path: &Path) -> Vec<PathBuf> {
    let mut stages = vec![path.to_path_buf()];
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Some(next) = follow_first_link(&current) else {
            break;
        };
        if stages.contains(&next) {
            break;
        }
        stages.push(next.clone());
        current = next;
    }
    stages
}

/// `path` with its first symlink component replaced by the link's target;
/// `None` when no component is a link.
fn follow_first_link(path: &Path) -> Option<PathBuf> {
    let components: Vec<Component<'_>> = path.components().collect();
    let mut prefix = PathBuf::new();
    for (index, component) in components.iter().enumerate() {
        prefix.push(component);
        let is_link = std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        let target = std::fs::read_link(&prefix).ok()?;
        // The prefix before this component holds no link, so `..` in a
        // relative target can be resolved by lexical steps.
        let mut next = prefix.parent().map(Path::to_path_buf).unwrap_or_default();
        for part in target
            .components()
            .chain(components[index + 1..].iter().copied())
        {
            match part {
                Component::ParentDir => {
                    next.pop();
                }
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => next = PathBuf::from(part.as_os_str()),
                Component::Normal(name) => next.push(name),
            }
        }
        return Some(next);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn a_configmap_mount_is_followed_through_every_link() {
        let root = std::env::temp_dir().join(format!("ferrygate-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("v1")).expect("mkdir");
        std::fs::write(root.join("v1/ferrygate.toml"), "").expect("write");
        symlink("v1", root.join("..data")).expect("link ..data");
        symlink("..data/ferrygate.toml", root.join("ferrygate.toml")).expect("link file");

        let stages = chain(&root.join("ferrygate.toml"));
        assert_eq!(
            stages,
            [
                root.join("ferrygate.toml"),
                root.join("..data/ferrygate.toml"),
                root.join("v1/ferrygate.toml"),
            ]
        );
        // A plain file is its own chain; a loop ends.
        assert_eq!(chain(&root.join("v1/ferrygate.toml")).len(), 1);
        symlink("loop-b", root.join("loop-a")).expect("link");
        symlink("loop-a", root.join("loop-b")).expect("link");
        assert!(chain(&root.join("loop-a")).len() <= 3);
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn relative_targets_with_parent_steps_and_absolute_targets_resolve() {
        let root = std::env::temp_dir().join(format!("ferrygate-links-up-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(root.join("real")).expect("mkdir");
        symlink("../../real/p.wasm", root.join("a/b/p.wasm")).expect("link");
        symlink(root.join("real/p.wasm"), root.join("abs.wasm")).expect("link");
        assert_eq!(
            chain(&root.join("a/b/p.wasm")).last(),
            Some(&root.join("real/p.wasm"))
        );
        assert_eq!(
            chain(&root.join("abs.wasm")).last(),
            Some(&root.join("real/p.wasm"))
        );
        std::fs::remove_dir_all(&root).ok();
    }
}
