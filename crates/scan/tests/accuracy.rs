//! Recall and false positives on the labelled corpus of `tests/common/accuracy.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::accuracy::{samples, score};
use ward_scan::{Config, Scanner};

#[test]
fn recall_and_false_positives_on_the_labelled_corpus() {
    let scanner = Scanner::new(Config::builtin()).unwrap();
    let samples = samples(23);
    let score = score(&scanner, &samples);
    for failure in &score.failures {
        eprintln!("{failure}");
    }
    eprintln!(
        "recall {}/{} = {:.2}%, false positives {}/{} = {:.2}%",
        score.found,
        score.positives,
        100.0 * score.recall(),
        score.reported,
        score.negatives,
        100.0 * score.false_positive_rate()
    );
}
