//! Loading plugin versions into the runtime: compile (or take from the artifact cache), check
//! the world, smoke-test against the fixtures, then swap into the slot; a failure at any step
//! keeps the active version serving. Also the dry check of a component without a swap.

use super::*;

impl PluginRuntime {
    /// Compiles, checks and smoke-tests `bytes` for `slot`, then swaps it in. On any error
    /// the active version keeps serving. `policy: None` keeps the slot's configured policy.
    pub async fn load(
        &self,
        slot: Slot,
        bytes: Vec<u8>,
        config: Config,
        policy: Option<FailurePolicy>,
        source: PluginSource,
    ) -> Result<LoadedVersion, LoadError> {
        let candidate = self
            .prepare_candidate(slot, bytes, config, policy, source)
            .await?;
        Ok(self.activate(candidate).await)
    }

    /// The first half of [`PluginRuntime::load`]: compiles, checks and smoke-tests `bytes` for
    /// `slot` without swapping anything in, so a caller can record the version elsewhere
    /// first and [`PluginRuntime::activate`] it only then.
    pub async fn prepare_candidate(
        &self,
        slot: Slot,
        bytes: Vec<u8>,
        config: Config,
        policy: Option<FailurePolicy>,
        source: PluginSource,
    ) -> Result<Candidate, LoadError> {
        let prepared = self.prepare(slot, bytes.into()).await?;
        let policy = policy.unwrap_or(self.inner.settings.slot(slot).policy);
        let plugin = candidate(prepared, source, config, policy);
        if self.inner.settings.smoke_test {
            self.smoke_test(slot, &plugin).await?;
        }
        Ok(Candidate { slot, plugin })
    }

    /// The second half of [`PluginRuntime::load`]: swaps a prepared candidate in.
    pub async fn activate(&self, candidate: Candidate) -> LoadedVersion {
        let Candidate { slot, plugin } = candidate;
        let state = self.slot(slot);
        let _guard = state.swap_lock.lock().await;
        let plugin = Arc::new(ActivePlugin {
            generation: state.next_generation(),
            ..plugin
        });
        state.activate(plugin.clone());
        tracing::info!(
            slot = %slot, version = %plugin.version(), generation = plugin.generation,
            source = ?plugin.source, policy = %plugin.policy, "plugin activated"
        );
        LoadedVersion::of(slot, &plugin)
    }

    /// Reads a component from `path` and loads it like [`PluginRuntime::load`].
    pub async fn load_file(
        &self,
        slot: Slot,
        path: &Path,
        config: Config,
        policy: Option<FailurePolicy>,
    ) -> Result<LoadedVersion, LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("Failed to read {}", path.display()))?;
        let source = PluginSource::File {
            path: path.to_path_buf(),
        };
        self.load(slot, bytes, config, policy, source).await
    }

    /// Loads the built-in default of `slot` with the slot's configured policy and config, and
    /// records it as the slot's last fallback.
    pub async fn load_default(&self, slot: Slot) -> Result<LoadedVersion, LoadError> {
        let settings = self.inner.settings.slot(slot).clone();
        let loaded = self
            .load(
                slot,
                default_component(slot).to_vec(),
                settings.config,
                None,
                PluginSource::Embedded,
            )
            .await?;
        let state = self.slot(slot);
        state.default.store(state.active.load_full());
        Ok(loaded)
    }

    /// Makes the built-in default active again (what a removed plugin file does).
    pub async fn revert_to_default(&self, slot: Slot) -> Result<LoadedVersion, LoadError> {
        let state = self.slot(slot);
        let Some(default) = state.default.load_full() else {
            return self.load_default(slot).await;
        };
        let _guard = state.swap_lock.lock().await;
        let plugin = Arc::new(default.reactivated(state.next_generation()));
        state.activate(plugin.clone());
        tracing::info!(slot = %slot, version = %plugin.version(), generation = plugin.generation, "reverted to the built-in plugin");
        Ok(LoadedVersion::of(slot, &plugin))
    }

    /// Compiles, checks and (when enabled) smoke-tests `bytes` for `slot` with the slot's
    /// configured config, without swapping anything in.
    pub async fn check(&self, slot: Slot, bytes: &[u8]) -> Result<CheckReport, LoadError> {
        let prepared = self.prepare(slot, bytes.into()).await?;
        let mut report = CheckReport {
            slot,
            sha256: prepared.sha256.clone(),
            size_bytes: prepared.size,
            compile_time: prepared.compile_time,
            cached: prepared.cached,
            exports: prepared.exports.clone(),
            imports: prepared.imports.clone(),
            smoke_tested: false,
        };
        if self.inner.settings.smoke_test {
            let settings = self.inner.settings.slot(slot).clone();
            let candidate = candidate(
                prepared,
                PluginSource::Embedded,
                settings.config,
                settings.policy,
            );
            self.smoke_test(slot, &candidate).await?;
            report.smoke_tested = true;
        }
        Ok(report)
    }

    pub(in crate::plugins) async fn prepare(
        &self,
        slot: Slot,
        bytes: Arc<[u8]>,
    ) -> Result<Prepared, LoadError> {
        let inner = &self.inner;
        prepare(
            &inner.engine,
            &inner.linker,
            inner.cache.as_ref(),
            slot,
            bytes,
        )
        .await
    }

    /// Runs the candidate on the built-in fixtures of its slot.
    pub(in crate::plugins) async fn smoke_test(
        &self,
        slot: Slot,
        candidate: &ActivePlugin,
    ) -> Result<(), LoadError> {
        let inputs = match slot {
            Slot::Tax => vec![PluginInput::Calculate(fixtures::draft())],
            Slot::Validation => vec![PluginInput::Validate(fixtures::draft())],
            Slot::Email => vec![
                PluginInput::RenderConfirmation(fixtures::stored_order()),
                PluginInput::RenderCancellation(fixtures::cancelled_order()),
            ],
        };
        for input in inputs {
            if let (Err(failure), _) = self.invoke(slot, candidate, &input).await {
                return Err(LoadError::SmokeTest {
                    slot,
                    message: format!("{}: {}", failure.kind.code(), failure.message),
                });
            }
        }
        Ok(())
    }
}
