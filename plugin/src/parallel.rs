//! Data parallelism for the stages that do the same work on every document or object of a large
//! bundle (parsing, decoding, encoding): results in input order, and on failure the first error
//! in input order, as a loop would give it.

use rayon::prelude::*;

/// Below this many items the work stays on the calling thread: a spec of a few documents (the
/// seed's has four) gains nothing from waking a thread pool.
const MIN_PARALLEL: usize = 64;

/// `f` over every item, on all cores when there are many.
pub(crate) fn try_map<T, R, E, F>(items: Vec<T>, f: F) -> Result<Vec<R>, E>
where
    T: Send,
    R: Send,
    E: Send,
    F: Fn(T) -> Result<R, E> + Sync + Send,
{
    if items.len() < MIN_PARALLEL {
        return items.into_iter().map(f).collect();
    }
    // Every item is mapped, then the first error in order wins: rayon's own collect into a
    // Result would return whichever error a thread met first.
    let results: Vec<Result<R, E>> = items.into_par_iter().map(f).collect();
    results.into_iter().collect()
}

/// `f` over every item, on all cores when there are many; results in input order.
pub(crate) fn map<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    match try_map(items, |item| Ok::<R, std::convert::Infallible>(f(item))) {
        Ok(results) => results,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_and_reports_the_first_error_in_it() {
        for n in [3, MIN_PARALLEL * 4] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = try_map(items.clone(), |i| Ok::<_, usize>(i * 2)).unwrap();
            assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
            // Items 1 and n-1 fail; the error is item 1's wherever the threads got first.
            let first = try_map(items, |i| if i == 1 || i == n - 1 { Err(i) } else { Ok(i) });
            assert_eq!(first, Err(1));
            assert_eq!(
                map((0..n).collect(), |i| i + 1),
                (1..=n).collect::<Vec<_>>()
            );
        }
    }
}
