//! Ward's secret scanner library.
