"""locotui's data layer: models and transports, no widgets.

The UI (``locotui/ui``) and the scriptable commands (``locotui/commands``) are built on
these interfaces only. Everything is asyncio; nothing here blocks the event loop (the
Kubernetes API is reached through the project's one layer, :mod:`backend.kube`, on the
official client's asyncio flavour; the blocking Prometheus client runs in worker threads).
Errors are the typed, one-line :mod:`locotui.data.errors` exceptions.

Settings — :mod:`locotui.config`, :mod:`locotui.keymap`
    ``config.add_arguments(parser)``; ``config.load_settings(args, env=None) -> Settings``
    (raises ``ConfigError``, one line). ``Settings``: ``backend_url, kubeconfig,
    kube_context, namespace, prometheus_url, read_only, thumbnails, thumbnail_interval,
    theme, default_view, log_tail_lines, log_buffer_lines, history_points, keys: Keymap,
    control_token, config_path, sources, warnings``; ``describe()``.
    ``keymap.ACTIONS`` (name → ``Action(name, description, default_keys)``);
    ``Keymap.keys_for(action)``, ``.key_string(action)``, ``.textual_keymap()`` for
    ``App.set_keymap`` (declare ``Binding(..., id=<action name>)``).

Errors — :mod:`locotui.data.errors`
    ``DataError(message, source, status)`` ← ``Unreachable``, ``Unauthorized``,
    ``Forbidden``, ``NotFound``, ``RateLimited(retry_after)``, ``ServerError``,
    ``BadResponse``, ``ReadOnly``; ``exit_code_for(exc) -> int``.

Connections — :mod:`locotui.data.link`
    ``LinkState`` (idle, connecting, connected, reconnecting, failed, stopped),
    ``LinkChange(state, error, retry_in, attempt, at, detail)``, ``Backoff``.

Backend — :mod:`locotui.data.backend_client`
    ``BackendClient(base_url, *, token=None, timeout=5.0)`` (async context manager):
    ``health()``, ``list_instances() -> ListResult(fleet, changed, etag)`` (ETag aware),
    ``get_instance(name) -> Instance``, ``thumbnail(name, width=160) -> bytes`` (PNG),
    ``logs(name, tail) -> list[str]``, ``follow_logs(name, tail) -> AsyncIterator[str]``,
    ``reset(name) / restart(name) -> ActionResult`` (Bearer token),
    ``timeline(name) -> list[TimelineEntry]``, ``remediation() -> RemediationStatus``
    (404: ``OFF``), ``pause_remediation(minutes, reason) / resume_remediation()`` (token),
    ``events(*, backoff, idle_timeout) -> AsyncIterator[SnapshotEvent | InstanceEvent |
    RemovedEvent | DiscoveryEvent | RemediationEvent | LinkChange | MalformedEvent]``
    (reconnects forever).

Kubernetes — :mod:`locotui.data.kube_client` (an adapter over :mod:`backend.kube`)
    ``await KubeClient.aconnect(kubeconfig, context, namespace)``,
    ``KubeClient.connect(...)`` outside a loop, or ``KubeClient.from_settings(settings)``;
    ``.namespace``, ``.detail``, ``await aclose()``;
    ``list_pods() -> PodSnapshot``, ``get_pod(name) -> KubePod``,
    ``watch_pods() -> AsyncIterator[PodSnapshot | PodChange | LinkChange]``,
    ``pod_logs(name, *, container, tail, follow, previous, timestamps, since_seconds)
    -> AsyncIterator[str]``, ``delete_pod(name) -> uid``,
    ``wait_pod_replaced(name, old_uid)``, ``pod_events(name, limit) -> list[KubeEvent]``,
    ``statefulsets_of(names)``, ``rollout_restart(sts)``, ``rollout_status(sts)``;
    ``pod_instance(KubePod) -> Instance`` (the fallback view's instance).

Fleet — :mod:`locotui.data.fleet`
    ``FleetModel(history_points=300, max_rate=10.0)``: ``entries: dict[str, Entry]``,
    ``links: dict[Source, Link]``, ``discovery``, ``live``, ``data_age()``; the automatic
    recovery: ``remediation`` (its state), ``decisions`` (recent ``RemediationEvent``s,
    bounded), ``decisions_since(seen)``, ``needing_a_person()``; input
    ``apply_event(item)``, ``apply_snapshot``, ``apply_pods``, ``apply_pod_change``,
    ``set_link``, ``set_remediation``; view ``set_filter(text)`` (``/regex/``),
    ``set_sort(SortKey, reverse)``, ``cycle_sort()``, ``set_unhealthy_only``, ``view() ->
    list[Entry]``, ``counts()``; selection
    ``select/deselect/toggle/select_visible/clear_selection``, ``targets(focused)``; change
    notification ``version``, ``subscribe(cb) -> unsubscribe`` (coalesced: at most
    ``max_rate`` calls/s), ``await wait_changed(seen)``. ``Entry``: ``name, instance, origin
    (backend|kubernetes), error, status, fps, restarts, node, started_at, fps_history,
    status_history, breaker_history, fps_values(n)``.
    :mod:`locotui.data.feeds`: ``FleetFeeds(fleet, backend=, kube=, fallback_after=5)``
    with ``start()``, ``stop()``, ``reconnect()`` keeps the model fed (backend SSE; the
    Kubernetes pod watch while the backend is gone; the automatic recovery's state, read
    on connect, after its decisions (coalesced), every 30 s and on
    ``refresh_remediation()``).

Logs — :mod:`locotui.data.logs`
    ``parse_line(raw, instance) -> LogLine``, ``format_line(line)``,
    ``LogBuffer(max_lines, max_bytes)`` (``append``, ``lines()``, ``since(seq)``,
    ``version``, ``dropped``), ``LogFilter(pattern, regex=, min_level=, instances=)``
    (``matches``, ``spans``, ``apply``), ``LogTail(buffer)`` (``add(instance, source)``,
    ``stop()``, ``errors``), sources ``kube_source(kube, name, ...)`` and
    ``backend_source(backend, name, ...)``, ``await save_lines(lines, path,
    overwrite=False, mode="raw"|"pretty")`` (atomic; ``SaveRefused``).

History — :mod:`locotui.data.history`
    ``make_history(prometheus_url, fleet) -> HistoryProvider`` with
    ``await fps(instances, window, step) -> {name: [(t, fps)]}`` and
    ``await status(...) -> {name: [(t, InstanceStatus)]}``: ``PrometheusHistory`` or
    ``SessionHistory`` (the fleet's ring buffers).

Automatic recovery — :mod:`locotui.data.remediation`
    ``OFF``, ``policy_state(status)``, ``policy_summary(status)`` (``off``, ``on``,
    ``on (dry run)``, ``PAUSED until 14:05Z (by ...)``), ``needing_a_person(instances)``,
    ``pause_request(minutes, reason) -> PauseRequest`` (raises ``ValueError``),
    ``describe_pause(request, now)``, ``describe_resume(status, bad)``.

Routes — :mod:`locotui.data.routes`
    ``Routes(backend=, kube=, source_of=)``: the one decision which side serves an
    instance: ``is_pod(name)``, ``restart(name) -> Mode``, ``logs(name, tail=, follow=,
    previous=, ...) -> LogRoute(source, note)``; ``is_pod(source, kube_available)``.

Actions — :mod:`locotui.data.actions`
    ``ActionKind`` (soft_reset, restart_pod, rolling_restart, forget);
    ``describe(action, targets, namespace=, mode=) -> str`` (confirmation text);
    ``ActionRunner(backend=, kube=, audit=, read_only=, fleet=, routes=)``: ``describe(action,
    targets)``, ``await run(action, targets, on_progress) -> list[Progress]`` (raises
    ``ReadOnly``), ``stream(action, targets) -> AsyncIterator[Progress]``;
    ``AuditLog`` (``entries``, ``subscribe``) of ``AuditEntry(at, action, targets,
    result, error, details)``.

Commands — :mod:`locotui.commands`
    ``commands.register(subparsers)`` adds ``status``, ``restart``, ``logs``,
    ``remediation``, ``config``; each module has ``add_arguments(parser)`` and
    ``run(settings, options) -> int``.
"""
