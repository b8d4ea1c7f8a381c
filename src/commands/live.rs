//! Live observation shared by `check`, `plan`, `status` and `upgrade`.

use crate::commands::Context;
use crate::commands::check::Observed;
use crate::error::WkError;
use crate::releases::{RuleOptions, Target};

pub async fn observe_and_plan(_ctx: Context, _target: &Target, _rules: RuleOptions) -> anyhow::Result<Observed> {
    Err(WkError::input("live checks are not available in this build", "use `--offline`").into())
}
