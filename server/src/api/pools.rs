//! `/v1/pools` and `/v1/sims`: SIM pools (named sets of an account's SIMs, by phone id and
//! sub_id, with optional destination-prefix preferences and stickiness), per-SIM settings
//! (relay-side daily cap, working hours with a UTC offset) and per-pool and per-SIM figures.
//!
//! Every bad input is answered with a JSON 4xx before anything is stored, and so is a member
//! that can never be routed (a SIM its phone does not report, see [`check_members`]).

use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};

use super::{Account, Page, views};
use crate::AppState;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::pool_router::{Hours, SimKey};
use crate::rack::SimStat;
use crate::store::{PhoneRow, now_ms};
use crate::store::{Pool, PoolOutcome, SimSettings};

/// Most SIMs in one pool.
const MAX_MEMBERS: usize = 1000;

/// A SIM in a request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimRef {
    #[schema(min_length = 1, max_length = 64)]
    phone: String,
    #[schema(minimum = 0, maximum = 2147483647)]
    sub_id: i64,
}

/// A prefix preference in a request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefixRef {
    #[schema(pattern = r"^\+[0-9]{1,15}$")]
    prefix: String,
    #[schema(min_items = 1)]
    sims: Vec<SimRef>,
}

/// Body of `POST /v1/pools`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePool {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,64}$")]
    name: String,
    #[schema(min_items = 1, max_items = 1000)]
    members: Vec<SimRef>,
    #[serde(default)]
    prefixes: Vec<PrefixRef>,
    #[serde(default)]
    sticky: bool,
}

/// A pool name: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_pool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn sim_key(r: &SimRef) -> Result<SimKey, AppError> {
    let sub_id = i32::try_from(r.sub_id)
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| AppError::bad_request("invalid_sim", "sub_id must be 0 or more"))?;
    if r.phone.is_empty() || r.phone.len() > 64 {
        return Err(AppError::bad_request(
            "unknown_phone",
            "phone is not a phone id",
        ));
    }
    Ok(SimKey::new(r.phone.clone(), sub_id))
}

fn valid_prefix(p: &str) -> bool {
    p.strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a pool request and turns it into a [`Pool`] created at `now` (whether its phones
/// are the account's is checked when it is stored).
pub fn validate_pool(req: &CreatePool, now: i64) -> Result<Pool, AppError> {
    if !valid_pool_name(&req.name) {
        return Err(AppError::bad_request(
            "invalid_pool",
            "name must be 1 to 64 letters, digits, '_' or '-'",
        ));
    }
    if req.members.is_empty() || req.members.len() > MAX_MEMBERS {
        return Err(AppError::bad_request(
            "invalid_pool",
            "members must hold 1 to 1000 SIMs",
        ));
    }
    let members: BTreeSet<SimKey> = req.members.iter().map(sim_key).collect::<Result<_, _>>()?;
    let mut prefixes = Vec::new();
    for p in &req.prefixes {
        if !valid_prefix(&p.prefix) {
            return Err(AppError::bad_request(
                "invalid_prefix",
                "prefix must be + and 1 to 15 digits",
            ));
        }
        let sims: Vec<SimKey> = p.sims.iter().map(sim_key).collect::<Result<_, _>>()?;
        if sims.is_empty() || sims.iter().any(|k| !members.contains(k)) {
            return Err(AppError::bad_request(
                "invalid_prefix",
                "a prefix names 1 or more SIMs of the pool",
            ));
        }
        prefixes.push((p.prefix.clone(), sims));
    }
    Ok(Pool {
        name: req.name.clone(),
        members: members.into_iter().collect(),
        prefixes,
        sticky: req.sticky,
        created_at: now,
    })
}

/// Whether a phone reports SIM `sub_id`: `None` while it has reported no SIM (it never
/// connected, or listed none), when any may still turn up.
pub fn reports_sim(phone: &PhoneRow, sub_id: i32) -> Option<bool> {
    let sims = &phone.status.as_ref()?.sims;
    (!sims.is_empty()).then(|| sims.iter().any(|s| s.sub_id == sub_id))
}

/// Refuses members that can never be routed: a SIM its phone does not report (a phone that
/// has reported no SIM yet is given the benefit of the doubt). Phones that are not the
/// account's are left to the store, which answers `unknown_phone`.
pub fn check_members(phones: &[PhoneRow], pool: &Pool) -> Result<(), AppError> {
    for k in &pool.members {
        let row = phones.iter().find(|p| p.id == k.phone);
        if row.and_then(|p| reports_sim(p, k.sub_id)) == Some(false) {
            return Err(AppError::bad_request(
                "unknown_sim",
                "a member names a SIM (sub_id) that its phone does not report",
            ));
        }
    }
    Ok(())
}

/// `POST /v1/pools`.
#[utoipa::path(
    post,
    path = "/v1/pools",
    tag = "pools",
    request_body = CreatePool,
    responses(
        (status = 201, description = "created", body = views::Pool),
        (status = 400, description = "a field breaks a rule (`invalid_pool`, `invalid_prefix`, `unknown_phone`, `unknown_sim`, ...)", body = ErrorBody),
        (status = 409, description = "a pool of that name exists (`pool_exists`)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Account(account): Account,
    ApiJson(req): ApiJson<CreatePool>,
) -> Result<(StatusCode, Json<views::Pool>), AppError> {
    let pool = validate_pool(&req, now_ms())?;
    let acc = account.clone();
    let phones = state.db.call(move |s| s.list_phones(&acc)).await?;
    check_members(&phones, &pool)?;
    let p = pool.clone();
    match state.db.call(move |s| s.create_pool(&account, &p)).await? {
        PoolOutcome::Created => {
            state.route_kick.notify_one();
            Ok((StatusCode::CREATED, Json(pool.into())))
        }
        PoolOutcome::Exists => Err(AppError::new(
            StatusCode::CONFLICT,
            "pool_exists",
            "a pool of that name exists; delete it first",
        )),
        PoolOutcome::UnknownPhone => Err(AppError::bad_request(
            "unknown_phone",
            "a SIM names a phone that is not one of this account's phones",
        )),
    }
}

/// `GET /v1/pools`.
#[utoipa::path(
    get,
    path = "/v1/pools",
    tag = "pools",
    responses(
        (status = 200, description = "the account's pools (not paged)", body = Page<views::Pool>),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<Page<views::Pool>>, AppError> {
    let pools = state.db.call(move |s| s.list_pools(&account)).await?;
    Ok(Json(Page::all(pools)))
}

/// `DELETE /v1/pools/{name}`. Messages that target it wait until a pool of that name exists
/// again (or expire).
#[utoipa::path(
    delete,
    path = "/v1/pools/{name}",
    tag = "pools",
    params(("name" = String, Path, description = "the pool name")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    Account(account): Account,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    if !valid_pool_name(&name) {
        return Err(AppError::not_found());
    }
    if state
        .db
        .call(move |s| s.delete_pool(&account, &name))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found())
    }
}

/// Figures of the account's SIMs and the recipients waiting per pool.
async fn figures(
    state: &AppState,
    account: String,
) -> Result<(Vec<SimStat>, HashMap<Option<String>, (u32, u32)>, Vec<Pool>), AppError> {
    let now = now_ms();
    let (input, phones, sent, waiting, pools) = state
        .db
        .call(move |s| {
            Ok((
                s.routing_input(&account, now)?,
                s.list_phones(&account)?,
                s.sent_since(&account, now - 600_000)?,
                s.unrouted_by_pool(&account)?,
                s.list_pools(&account)?,
            ))
        })
        .await?;
    let is_online = state.online_check().await?;
    let phones: Vec<_> = phones
        .into_iter()
        .map(|p| {
            let online = is_online(&p.id);
            (p.id, online, p.status.map(|s| s.sims).unwrap_or_default())
        })
        .collect();
    let stats = state.rack.sim_stats(&input, &phones, &sent, now);
    Ok((stats, waiting, pools))
}

fn totals(sims: &[&SimStat], waiting: (u32, u32)) -> views::SimTotals {
    let usable: Vec<&&SimStat> = sims
        .iter()
        .filter(|s| s.online && s.state == "healthy")
        .collect();
    // Paces are the phones' word (up to u32::MAX each): the totals saturate.
    let pace = usable
        .iter()
        .fold(0u32, |a, s| a.saturating_add(s.parts_per_minute));
    let queue = sims
        .iter()
        .fold(0u32, |a, s| a.saturating_add(s.queue_parts));
    let tput: f64 = sims.iter().map(|s| s.throughput_per_min).sum();
    let held = queue.saturating_add(waiting.1);
    let drain = f64::from(held) * 60.0 / f64::from(pace.max(1));
    views::SimTotals {
        sims: sims.len(),
        usable_sims: usable.len(),
        parts_per_minute: pace,
        queue_parts: queue,
        waiting_recipients: waiting.0,
        waiting_parts: waiting.1,
        throughput_per_min: tput,
        pace_utilisation: if pace == 0 {
            0.0
        } else {
            tput / f64::from(pace)
        },
        drain_seconds: (pace > 0 || held == 0).then_some(drain),
    }
}

/// `GET /v1/sims`: every SIM of the account's phones with its settings, state and figures.
#[utoipa::path(
    get,
    path = "/v1/sims",
    tag = "pools",
    responses(
        (status = 200, description = "figures of every SIM of the account", body = views::SimReport),
    ),
)]
pub async fn sims(
    State(state): State<AppState>,
    Account(account): Account,
) -> Result<Json<views::SimReport>, AppError> {
    let (stats, waiting, _) = figures(&state, account).await?;
    let all: Vec<&SimStat> = stats.iter().collect();
    let w = waiting.values().fold((0u32, 0u32), |a, (r, p)| {
        (a.0.saturating_add(*r), a.1.saturating_add(*p))
    });
    let totals = totals(&all, w);
    Ok(Json(views::SimReport {
        name: None,
        sims: stats,
        totals,
    }))
}

/// `GET /v1/pools/{name}/stats`.
#[utoipa::path(
    get,
    path = "/v1/pools/{name}/stats",
    tag = "pools",
    params(("name" = String, Path, description = "the pool name")),
    responses(
        (status = 200, description = "figures of the pool's SIMs", body = views::SimReport),
        (status = 404, description = "no such resource of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    Account(account): Account,
    Path(name): Path<String>,
) -> Result<Json<views::SimReport>, AppError> {
    let (stats, waiting, pools) = figures(&state, account).await?;
    let pool = pools
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(AppError::not_found)?;
    let members: BTreeSet<&SimKey> = pool.members.iter().collect();
    let sims: Vec<&SimStat> = stats
        .iter()
        .filter(|s| members.contains(&SimKey::new(s.phone.clone(), s.sub_id)))
        .collect();
    let w = waiting.get(&Some(name.clone())).copied().unwrap_or((0, 0));
    let totals = totals(&sims, w);
    Ok(Json(views::SimReport {
        name: Some(name),
        sims: sims.into_iter().cloned().collect(),
        totals,
    }))
}

fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /v1/sims/{phone}/{sub_id}`: absent fields keep their value, `null` clears.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSim {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    daily_cap: Option<Option<u32>>,
    /// `"HH:MM-HH:MM"` in local time.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, pattern = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]-([01]?[0-9]|2[0-3]):[0-5][0-9]$")]
    hours: Option<Option<String>>,
    /// Local time minus UTC, in minutes (-840 to 840).
    #[serde(default)]
    #[schema(minimum = -840, maximum = 840)]
    utc_offset_min: Option<i16>,
}

/// `PATCH /v1/sims/{phone}/{sub_id}`.
#[utoipa::path(
    patch,
    path = "/v1/sims/{phone}/{sub_id}",
    tag = "pools",
    params(("phone" = String, Path, description = "the phone id"), ("sub_id" = i32, Path, minimum = 0, description = "the SIM's subscription id")),
    request_body = PatchSim,
    responses(
        (status = 200, description = "the SIM's settings after the change", body = views::SimLimits),
        (status = 400, description = "a field breaks a rule (`invalid_sim`, `invalid_hours`, ...)", body = ErrorBody),
        (status = 404, description = "no such phone of this account (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn patch_sim(
    State(state): State<AppState>,
    Account(account): Account,
    Path((phone, sub_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchSim>,
) -> Result<Json<views::SimLimits>, AppError> {
    let sub_id: i32 = sub_id
        .parse()
        .ok()
        .filter(|s| *s >= 0)
        .ok_or_else(|| AppError::bad_request("invalid_sim", "sub_id must be 0 or more"))?;
    let key = SimKey::new(phone, sub_id);
    let now = now_ms();
    let acc = account.clone();
    let (input, phones) = state
        .db
        .call(move |s| Ok((s.routing_input(&acc, now)?, s.list_phones(&acc)?)))
        .await?;
    let Some(row) = phones.iter().find(|p| p.id == key.phone) else {
        return Err(AppError::not_found());
    };
    let known = row
        .status
        .as_ref()
        .is_none_or(|s| s.sims.iter().any(|x| x.sub_id == sub_id));
    if !known {
        return Err(AppError::bad_request(
            "invalid_sim",
            "the phone reports no SIM with that sub_id",
        ));
    }
    let current = input.settings.get(&key).cloned().unwrap_or_default();
    let settings = apply_patch(req, current)?;
    let (k, s2) = (key.clone(), settings.clone());
    let stored = state
        .db
        .call(move |s| s.set_sim_settings(&account, &k, &s2))
        .await?;
    if !stored {
        return Err(AppError::not_found());
    }
    state.route_kick.notify_one();
    Ok(Json(views::SimLimits::new(key, settings)))
}

/// Applies a patch to a SIM's current settings and checks the result: the UTC offset within
/// -840..=840 minutes, the hours a non-empty `"HH:MM-HH:MM"` window (stored normalised).
pub fn apply_patch(req: PatchSim, mut settings: SimSettings) -> Result<SimSettings, AppError> {
    if let Some(cap) = req.daily_cap {
        settings.daily_cap = cap;
    }
    if let Some(offset) = req.utc_offset_min {
        settings.utc_offset_min = offset;
    }
    if let Some(hours) = req.hours {
        settings.hours = hours;
    }
    if !(-840..=840).contains(&settings.utc_offset_min) {
        return Err(AppError::bad_request(
            "invalid_hours",
            "utc_offset_min must be within -840..=840",
        ));
    }
    if let Some(h) = &settings.hours {
        let parsed = Hours::parse(h, settings.utc_offset_min).ok_or_else(|| {
            AppError::bad_request(
                "invalid_hours",
                "hours must be \"HH:MM-HH:MM\" with distinct start and end",
            )
        })?;
        settings.hours = Some(parsed.window());
    }
    Ok(settings)
}
