//! Which middletier refreshes which feed, when several share one store.
//!
//! **Rendezvous (highest random weight) hashing**: every instance scores
//! every feed with a hash of (instance id, feed URL), and the instance with
//! the highest score owns the feed. Every instance computes the same answer
//! from the same list of `UP` instances, so there is no coordinator and no
//! lock; when an instance joins, it takes only the feeds it now scores
//! highest on (about 1/n of them), and when one leaves, only its feeds move.
//! Consistent hashing on a ring gives the same property but needs virtual
//! nodes to spread evenly; this needs nothing.
//!
//! The hash is XXH64 with a fixed seed, so every build and every platform
//! agrees on it (the standard library's hasher promises neither).

use std::hash::Hasher;

use twox_hash::XxHash64;

/// The owner of `feed` among `instances` (their registry ids); `None` when
/// there are none.
pub fn owner<'a>(feed: &str, instances: &'a [String]) -> Option<&'a str> {
    instances
        .iter()
        // Ties (astronomically unlikely) go to the smaller id, so every
        // instance still agrees.
        .max_by(|a, b| score(a, feed).cmp(&score(b, feed)).then_with(|| b.cmp(a)))
        .map(String::as_str)
}

/// Whether `me` owns `feed` among `instances` (which should include `me`).
pub fn owns(me: &str, feed: &str, instances: &[String]) -> bool {
    owner(feed, instances) == Some(me)
}

fn score(instance: &str, feed: &str) -> u64 {
    let mut hasher = XxHash64::with_seed(0);
    hasher.write(instance.as_bytes());
    // A separator, so ("ab", "c") and ("a", "bc") score differently.
    hasher.write(&[0]);
    hasher.write(feed.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feeds(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("https://site{}.example/feed.xml", i))
            .collect()
    }

    fn instances(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|&s| s.to_owned()).collect()
    }

    #[test]
    fn every_feed_has_exactly_one_owner() {
        let up = instances(&["mt-a:9191", "mt-b:9191", "mt-c:9191"]);
        for feed in feeds(2000) {
            let owners = up.iter().filter(|me| owns(me, &feed, &up)).count();
            assert_eq!(owners, 1, "{feed}");
        }
        assert_eq!(owner("https://x.example/", &[]), None);
    }

    #[test]
    fn instances_agree_whatever_order_they_list_each_other_in() {
        let up = instances(&["a", "b", "c", "d"]);
        let mut reversed = up.clone();
        reversed.reverse();
        for feed in feeds(500) {
            assert_eq!(owner(&feed, &up), owner(&feed, &reversed));
        }
    }

    #[test]
    fn feeds_spread_evenly() {
        let up = instances(&["a", "b", "c", "d"]);
        let all = feeds(10_000);
        for me in &up {
            let mine = all.iter().filter(|f| owns(me, f, &up)).count();
            assert!((2_200..2_800).contains(&mine), "{me} owns {mine} of 10000");
        }
    }

    #[test]
    fn only_about_one_in_n_feeds_move_when_an_instance_joins_or_leaves() {
        let three = instances(&["a", "b", "c"]);
        let four = instances(&["a", "b", "c", "d"]);
        let all = feeds(10_000);
        let moved: Vec<&String> = all
            .iter()
            .filter(|f| owner(f, &three) != owner(f, &four))
            .collect();
        // A quarter of the feeds move, and every one of them to the newcomer.
        assert!(
            (2_200..2_800).contains(&moved.len()),
            "{} moved",
            moved.len()
        );
        assert!(moved.iter().all(|f| owner(f, &four) == Some("d")));

        // When "b" leaves, only b's feeds move.
        let without_b = instances(&["a", "c", "d"]);
        for feed in &all {
            if owner(feed, &four) != Some("b") {
                assert_eq!(owner(feed, &four), owner(feed, &without_b), "{feed}");
            }
        }
    }
}
