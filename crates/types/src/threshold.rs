//! Threshold parameters and backup share indices.
//!
//! A share index is a backup share's x-coordinate, `1..=n`; it is not a
//! tss-lib party id (those live in `shardkeep-sss-core`), and the two never
//! mix.

use core::fmt;
use core::num::NonZeroU8;

use crate::error::ThresholdError;

/// `t`-of-`n`: any `t` of the `n` shares recover the secret, fewer reveal
/// nothing. `2 <= t <= n <= 255`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Threshold {
    t: u8,
    n: u8,
}

impl Threshold {
    /// `t` shares out of `n` recover.
    ///
    /// # Errors
    /// [`ThresholdError::InvalidThreshold`] unless `2 <= t <= n <= 255`.
    pub fn new(t: usize, n: usize) -> Result<Self, ThresholdError> {
        match (u8::try_from(t), u8::try_from(n)) {
            (Ok(t8), Ok(n8)) if 2 <= t8 && t8 <= n8 => Ok(Self { t: t8, n: n8 }),
            _ => Err(ThresholdError::InvalidThreshold { t, n }),
        }
    }

    /// Converts tss-lib's `threshold`, which is the **degree** of the sharing
    /// polynomial (`degree + 1` parties sign), for a group of `parties`.
    ///
    /// ```
    /// # use shardkeep_types::Threshold;
    /// // tss-lib's test fixtures: threshold 2 among 5 parties, 3 sign.
    /// let t = Threshold::from_tss_lib(2, 5)?;
    /// assert_eq!((t.t(), t.n()), (3, 5));
    /// assert_eq!(t.tss_lib_degree(), 2);
    /// # Ok::<(), shardkeep_types::ThresholdError>(())
    /// ```
    ///
    /// # Errors
    /// [`ThresholdError::InvalidThreshold`] when the result is not a valid threshold.
    pub fn from_tss_lib(degree: usize, parties: usize) -> Result<Self, ThresholdError> {
        let t = degree
            .checked_add(1)
            .ok_or(ThresholdError::InvalidThreshold {
                t: degree,
                n: parties,
            })?;
        Self::new(t, parties)
    }

    /// The inverse of [`Threshold::from_tss_lib`]: tss-lib's `threshold`
    /// (polynomial degree), `t - 1`.
    #[must_use]
    pub fn tss_lib_degree(self) -> usize {
        usize::from(self.t) - 1
    }

    /// Shares needed to recover.
    #[must_use]
    pub fn t(self) -> u8 {
        self.t
    }

    /// Shares in total.
    #[must_use]
    pub fn n(self) -> u8 {
        self.n
    }

    /// Validates a share index against this threshold: `1..=n`.
    ///
    /// # Errors
    /// [`ThresholdError::IndexOutOfRange`].
    pub fn share_index(self, index: u8) -> Result<ShareIndex, ThresholdError> {
        match NonZeroU8::new(index) {
            Some(i) if index <= self.n => Ok(ShareIndex(i)),
            _ => Err(ThresholdError::IndexOutOfRange { index, n: self.n }),
        }
    }

    /// All share indices `1..=n`, in order.
    pub fn indices(self) -> impl Iterator<Item = ShareIndex> {
        (1..=self.n).filter_map(ShareIndex::new)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-of-{}", self.t, self.n)
    }
}

/// A backup share's x-coordinate, `1..=n`. Not a tss-lib party id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareIndex(NonZeroU8);

impl ShareIndex {
    /// A non-zero index; `None` for 0. Use [`Threshold::share_index`] to also
    /// check the upper bound.
    #[must_use]
    pub const fn new(index: u8) -> Option<Self> {
        match NonZeroU8::new(index) {
            Some(i) => Some(Self(i)),
            None => None,
        }
    }

    /// The index as a number.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0.get()
    }
}

impl fmt::Display for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn threshold_bounds() {
        assert!(Threshold::new(2, 2).is_ok());
        assert!(Threshold::new(255, 255).is_ok());
        for (t, n) in [
            (0, 5),
            (1, 5),
            (6, 5),
            (2, 256),
            (256, 256),
            (usize::MAX, 3),
        ] {
            assert_eq!(
                Threshold::new(t, n),
                Err(ThresholdError::InvalidThreshold { t, n })
            );
        }
        assert_eq!(Threshold::new(3, 5).unwrap().to_string(), "3-of-5");
    }

    #[test]
    fn tss_lib_degree_round_trips() {
        for degree in 1..20 {
            let t = Threshold::from_tss_lib(degree, 20).unwrap();
            assert_eq!(usize::from(t.t()), degree + 1);
            assert_eq!(t.tss_lib_degree(), degree);
        }
        assert!(
            Threshold::from_tss_lib(0, 5).is_err(),
            "degree 0 is one signer"
        );
        assert!(
            Threshold::from_tss_lib(5, 5).is_err(),
            "degree n needs n+1 parties"
        );
        assert!(Threshold::from_tss_lib(usize::MAX, 5).is_err());
    }

    #[test]
    fn share_index_range() {
        let t = Threshold::new(3, 5).unwrap();
        assert_eq!(t.share_index(1).unwrap().get(), 1);
        assert_eq!(t.share_index(5).unwrap().get(), 5);
        assert_eq!(
            t.share_index(0),
            Err(ThresholdError::IndexOutOfRange { index: 0, n: 5 })
        );
        assert_eq!(
            t.share_index(6),
            Err(ThresholdError::IndexOutOfRange { index: 6, n: 5 })
        );
        assert_eq!(
            t.indices().map(ShareIndex::get).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(ShareIndex::new(0).is_none());
        assert_eq!(ShareIndex::new(4).unwrap().to_string(), "4");
    }

    proptest! {
        /// `new` accepts exactly `2 <= t <= n <= 255`, keeps both numbers,
        /// and its indices are exactly `1..=n`.
        #[test]
        fn thresholds_hold_their_rule(t in 0usize..300, n in 0usize..300) {
            match Threshold::new(t, n) {
                Ok(threshold) => {
                    prop_assert!(2 <= t && t <= n && n <= 255);
                    prop_assert_eq!((usize::from(threshold.t()), usize::from(threshold.n())), (t, n));
                    prop_assert_eq!(threshold.indices().count(), n);
                    prop_assert!(threshold.indices().all(|i| threshold.share_index(i.get()).is_ok()));
                }
                Err(error) => {
                    prop_assert!(!(2 <= t && t <= n && n <= 255));
                    prop_assert_eq!(error, ThresholdError::InvalidThreshold { t, n });
                }
            }
        }
    }
}
