//! Figures with their goals, and the summary over runs: each figure's median with its
//! min–max, judged against its goal on the median (a goal's figure is the median of at least
//! three runs), printed as a Markdown table that can go into BENCHMARKS.md as it is.

/// What a figure must be to meet its goal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// No goal: the figure is context.
    None,
    /// At least this much.
    AtLeast(f64),
    /// At most this much.
    AtMost(f64),
    /// Strictly less than this.
    Below(f64),
}

/// How a figure's number reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Orders per second.
    PerSecond,
    /// A number of orders.
    Orders,
    /// A percentage (the number is already ×100).
    Percent,
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// MiB.
    Mebibytes,
}

impl Unit {
    fn format(self, v: f64) -> String {
        match self {
            Unit::PerSecond => format!("{}/s", thousands(v)),
            Unit::Orders => thousands(v),
            Unit::Percent => format!("{v:.1}%"),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::Millis if v >= 1000.0 => format!("{} ms", thousands(v)),
            Unit::Millis => format!("{v:.1} ms"),
            Unit::Micros => format!("{} µs", thousands(v)),
            Unit::Mebibytes => format!("{v:.1} MiB"),
        }
    }

    /// The number alone, for the low end of a range.
    fn bare(self, v: f64) -> String {
        match self {
            Unit::PerSecond | Unit::Orders | Unit::Micros => thousands(v),
            Unit::Percent => format!("{v:.1}"),
            Unit::Seconds => format!("{v:.2}"),
            Unit::Millis if v >= 1000.0 => thousands(v),
            Unit::Millis | Unit::Mebibytes => format!("{v:.1}"),
        }
    }
}

/// One measured number. `more_than` marks a lower bound: the wait for it ended before the
/// figure was known (a drain that did not finish, a latency beyond the read-back wait).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub v: f64,
    pub more_than: bool,
}

impl Value {
    pub fn exact(v: f64) -> Self {
        Self {
            v,
            more_than: false,
        }
    }

    pub fn more_than(v: f64) -> Self {
        Self { v, more_than: true }
    }
}

/// One figure of one run.
#[derive(Debug, Clone)]
pub struct Figure {
    pub label: String,
    pub unit: Unit,
    pub goal: Goal,
    /// `None` when it could not be measured (e.g. the process's memory was unreadable).
    pub value: Option<Value>,
}

impl Figure {
    pub fn new(label: impl Into<String>, unit: Unit, goal: Goal, value: Option<Value>) -> Self {
        Self {
            label: label.into(),
            unit,
            goal,
            value,
        }
    }

    /// The goal as text, e.g. `≥ 2,500/s`.
    pub fn goal_text(&self) -> String {
        match self.goal {
            Goal::None => "-".to_owned(),
            Goal::AtLeast(b) => format!("≥ {}", self.unit.format(b)),
            Goal::AtMost(b) => format!("≤ {}", self.unit.format(b)),
            Goal::Below(b) => format!("< {}", self.unit.format(b)),
        }
    }

    /// The value as text, `> 120.00 s` for a lower bound.
    pub fn value_text(&self) -> String {
        match self.value {
            None => "not measured".to_owned(),
            Some(v) => show(self.unit, v),
        }
    }

    /// `met`, `MISSED`, `unknown` (a lower bound that does not decide) or `n/a` (no goal).
    pub fn verdict(&self) -> &'static str {
        judge(self.goal, self.value)
    }
}

fn show(unit: Unit, v: Value) -> String {
    if v.more_than {
        format!("> {}", unit.format(v.v))
    } else {
        unit.format(v.v)
    }
}

fn judge(goal: Goal, value: Option<Value>) -> &'static str {
    let Some(Value { v, more_than }) = value else {
        return if goal == Goal::None { "n/a" } else { "unknown" };
    };
    // A lower bound decides only when even the bound settles the goal.
    let (met, decided) = match goal {
        Goal::None => return "n/a",
        Goal::AtLeast(b) => (v >= b, v >= b || !more_than),
        Goal::AtMost(b) => (v <= b && !more_than, v >= b || !more_than),
        Goal::Below(b) => (v < b && !more_than, v >= b || !more_than),
    };
    match (decided, met) {
        (false, _) => "unknown",
        (true, true) => "met",
        (true, false) => "MISSED",
    }
}

/// The median of `values` (lower bounds sort by their bound and keep their mark), with the
/// smallest and largest.
pub fn median_range(values: &[Value]) -> Option<(Value, Value, Value)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.v.total_cmp(&b.v));
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let median = if !n.is_multiple_of(2) {
        sorted[n / 2]
    } else {
        let (a, b) = (sorted[n / 2 - 1], sorted[n / 2]);
        Value {
            v: (a.v + b.v) / 2.0,
            more_than: a.more_than || b.more_than,
        }
    };
    Some((median, sorted[0], sorted[n - 1]))
}

/// Prints one line per figure over all `runs` (each run lists the same figures in the same
/// order) as a Markdown table, judged on the median.
pub fn print_table(runs: &[Vec<Figure>]) {
    let Some(first) = runs.first() else {
        return;
    };
    println!(
        "| figure | median (min–max) over {} run(s) | goal | met |",
        runs.len()
    );
    println!("|---|---|---|---|");
    for (i, figure) in first.iter().enumerate() {
        let values: Vec<Value> = runs
            .iter()
            .filter_map(|run| run.get(i).and_then(|f| f.value))
            .collect();
        let (text, verdict) = match median_range(&values) {
            None => ("not measured".to_owned(), judge(figure.goal, None)),
            Some((median, low, high)) => {
                let text = if runs.len() == 1 {
                    show(figure.unit, median)
                } else {
                    format!(
                        "{} ({}{}–{}{})",
                        show(figure.unit, median),
                        if low.more_than { "> " } else { "" },
                        figure.unit.bare(low.v),
                        if high.more_than { "> " } else { "" },
                        figure.unit.bare(high.v)
                    )
                };
                (text, judge(figure.goal, Some(median)))
            }
        };
        println!(
            "| {} | {text} | {} | {verdict} |",
            figure.label,
            figure.goal_text()
        );
    }
}

/// `12,345` for 12345.4.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_odd_runs_is_the_middle_one_with_the_range() {
        let values = [Value::exact(3.0), Value::exact(1.0), Value::exact(2.0)];
        let (median, low, high) = median_range(&values).unwrap();
        assert_eq!((median.v, low.v, high.v), (2.0, 1.0, 3.0));
    }

    #[test]
    fn goals_are_judged_on_the_value() {
        assert_eq!(
            judge(Goal::AtLeast(2500.0), Some(Value::exact(2500.0))),
            "met"
        );
        assert_eq!(
            judge(Goal::AtLeast(2500.0), Some(Value::exact(600.0))),
            "MISSED"
        );
        assert_eq!(judge(Goal::AtMost(2.0), Some(Value::exact(2.5))), "MISSED");
        assert_eq!(judge(Goal::Below(1.0), Some(Value::exact(1.0))), "MISSED");
        assert_eq!(judge(Goal::None, Some(Value::exact(1.0))), "n/a");
    }

    #[test]
    fn a_lower_bound_decides_only_when_the_bound_already_settles_the_goal() {
        assert_eq!(
            judge(Goal::AtMost(2.0), Some(Value::more_than(120.0))),
            "MISSED"
        );
        assert_eq!(
            judge(Goal::AtMost(2.0), Some(Value::more_than(1.0))),
            "unknown"
        );
        assert_eq!(
            judge(Goal::AtLeast(5.0), Some(Value::more_than(6.0))),
            "met"
        );
        assert_eq!(
            judge(Goal::AtLeast(5.0), Some(Value::more_than(4.0))),
            "unknown"
        );
        assert_eq!(judge(Goal::AtMost(2.0), None), "unknown");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(2500.0), "2,500");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.6), "1,000");
    }
}
