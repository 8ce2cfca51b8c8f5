use std::sync::Arc;

use super::criteria::gain_range;
use super::*;
use crate::interactions::Interactions;
use crate::kernels::{sigmoid, Embeddings};
use crate::memory::{MemoryState, Retain};
use crate::proposal::Proposal;
use crate::rng::Rng;

fn data() -> Arc<Interactions> {
    let mut users = vec![];
    let mut items = vec![];
    for u in 0..40i64 {
        for t in 0..(3 + u % 5) {
            users.push(u);
            items.push((u * 7 + t * 3) % 50);
        }
    }
    Arc::new(Interactions::from_pairs(&users, &items, None, Some(50)).unwrap())
}

fn emb(train: &Interactions, seed: u64) -> Embeddings {
    let mut r = Rng::new(seed);
    let d = 4;
    let u = (0..train.n_users() * d)
        .map(|_| r.uniform() as f32 - 0.5)
        .collect();
    let i = (0..train.n_items() * d)
        .map(|_| r.uniform() as f32 - 0.5)
        .collect();
    Embeddings::new(u, i, d, train.n_users(), train.n_items()).unwrap()
}

fn gain_sampler(train: Arc<Interactions>) -> DynamicSampler {
    DynamicSampler::new(
        train,
        Proposal::Uniform,
        RefreshConfig {
            slots: 8,
            fresh: 8,
            history: 3,
            retain: Retain::TopH,
            alpha: 0.2,
            eps: 1e-6,
            g0: 0.5,
            max_positives: None,
            gain_window: 1,
        },
        DrawConfig {
            memory_candidates: 3,
            fresh_candidates: 2,
            criterion: Criterion::Gain { beta: 1.0 },
            temperature: 0.0,
            gain_positives: 16,
            memory_step: false,
            gain_warmup: 0.0,
        },
        7,
    )
    .unwrap()
}

#[test]
fn refresh_fills_memory_with_hardest_negatives_and_gain_needs_two() {
    let train = data();
    let mut s = gain_sampler(train.clone());
    s.set_embeddings(emb(&train, 1)).unwrap();
    s.refresh_from_vectors().unwrap();
    for u in 0..train.n_users() {
        let r = s.memory.range(u);
        let items = &s.memory.items[r.clone()];
        assert!(items
            .iter()
            .all(|&i| i >= 0 && !train.contains(u, i as u32)));
        // Sorted by H, highest first.
        let h = &s.memory.h[r.clone()];
        assert!(h.windows(2).all(|w| w[0] >= w[1]));
        assert!(s.memory.g[r].iter().all(|&g| g == 0.5));
    }
    s.set_embeddings(emb(&train, 2)).unwrap();
    s.refresh_from_vectors().unwrap();
    let moved = (0..s.memory.g.len())
        .filter(|&k| s.memory.obs[k] >= 2 && s.memory.g[k] != 0.5)
        .count();
    assert!(moved > 0);
}

#[test]
fn draws_are_negatives_and_deterministic() {
    let train = data();
    // Enough draws to take the parallel path.
    let users: Vec<i64> = (0..4000).map(|r| r % 40).collect();
    let run = || {
        let mut s = gain_sampler(train.clone());
        s.set_embeddings(emb(&train, 1)).unwrap();
        s.refresh_from_vectors().unwrap();
        s.draw_from_vectors(&users, None, 3).unwrap()
    };
    let a = run();
    for (r, row) in a.chunks(3).enumerate() {
        for &j in row {
            assert!(!train.contains(users[r] as usize, j as u32));
        }
    }
    crate::pool::set_num_threads(1).unwrap();
    assert_eq!(a, run());
    crate::pool::set_num_threads(3).unwrap();
    assert_eq!(a, run());
}

#[test]
fn dns_picks_the_highest_scored_candidate() {
    let train = data();
    let mut s = DynamicSampler::new(
        train.clone(),
        Proposal::Uniform,
        RefreshConfig {
            slots: 0,
            fresh: 0,
            history: 0,
            retain: Retain::TopH,
            alpha: 0.2,
            eps: 1e-6,
            g0: 0.5,
            max_positives: None,
            gain_window: 1,
        },
        DrawConfig {
            memory_candidates: 0,
            fresh_candidates: 5,
            criterion: Criterion::Score,
            temperature: 0.0,
            gain_positives: 0,
            memory_step: false,
            gain_warmup: 0.0,
        },
        1,
    )
    .unwrap();
    let users: Vec<i64> = (0..40).collect();
    let p = s.propose(&users, None, 2).unwrap();
    let scores: Vec<f32> = p.items.iter().map(|&i| (i * 37 % 11) as f32).collect();
    let out = s.select(&users, &p, 2, &scores, &[0.0; 40]).unwrap();
    for (d, &chosen) in out.iter().enumerate() {
        let c = &p.items[d * 5..(d + 1) * 5];
        let best = c
            .iter()
            .map(|&i| (i * 37 % 11) as f32)
            .fold(f32::MIN, f32::max);
        assert_eq!((chosen * 37 % 11) as f32, best);
    }
}

fn sampler(
    train: Arc<Interactions>,
    slots: usize,
    memory_candidates: usize,
    fresh_candidates: usize,
    criterion: Criterion,
    temperature: f32,
    g0: f32,
) -> DynamicSampler {
    DynamicSampler::new(
        train,
        Proposal::Uniform,
        RefreshConfig {
            slots,
            fresh: 8,
            history: 2,
            retain: Retain::TopH,
            alpha: 0.2,
            eps: 1e-6,
            g0,
            max_positives: None,
            gain_window: 1,
        },
        DrawConfig {
            memory_candidates,
            fresh_candidates,
            criterion,
            temperature,
            gain_positives: 16,
            memory_step: false,
            gain_warmup: 0.0,
        },
        3,
    )
    .unwrap()
}

/// A memory whose every slot holds a negative with two observations and
/// a gain drawn from `[lo, hi]`, so each candidate's `G` is known.
fn known_memory(s: &mut DynamicSampler, rng: &mut Rng) {
    let train = s.train().clone();
    let slots = s.memory().slots();
    let (lo, hi) = gain_range(s.refresh_config().g0);
    let mut st = s.memory().state();
    for u in 0..train.n_users() {
        let negs: Vec<i32> = (0..train.n_items() as u32)
            .filter(|&i| !train.contains(u, i))
            .map(|i| i as i32)
            .collect();
        for (k, &j) in negs.iter().take(slots).enumerate() {
            let p = u * slots + k;
            st.items[p] = j;
            st.obs[p] = 2;
            st.h[p] = 0.5;
            st.g[p] = lo + (hi - lo) * rng.uniform() as f32;
        }
    }
    s.restore_memory(st, 2).unwrap();
}

fn memory_gain(s: &DynamicSampler, u: usize, item: i64) -> f32 {
    let m = s.memory();
    let r = m.range(u);
    let slot = r.clone().find(|&p| m.items[p] as i64 == item).unwrap();
    m.g[slot]
}

/// Draws with every candidate in memory, so `G` is the slot's gain: each
/// pick is the argmax of the criterion's formula over its candidates.
#[test]
fn gain_criteria_pick_what_their_formulas_say() {
    let train = data();
    let mut rng = Rng::new(17);
    for &g0 in &[0.5f32, 1.5, -0.5] {
        for &beta in &[0.0f32, 1.0, 3.0] {
            for &(slots, name) in &[(6usize, "pruned"), (40, "full scan")] {
                for crit in [
                    Criterion::Gain { beta },
                    Criterion::GainAdditive { beta },
                    Criterion::GainOnly,
                ] {
                    let mut s = sampler(train.clone(), slots, slots, 0, crit, 0.0, g0);
                    known_memory(&mut s, &mut rng);
                    let users: Vec<i64> = (0..40).collect();
                    let p = s.propose(&users, None, 3).unwrap();
                    let scores: Vec<f32> = p
                        .items
                        .iter()
                        .map(|_| (rng.uniform() as f32 - 0.5) * 6.0)
                        .collect();
                    let anchor_scores: Vec<f32> =
                        (0..40).map(|_| rng.uniform() as f32 - 0.5).collect();
                    let out = s.select(&users, &p, 3, &scores, &anchor_scores).unwrap();
                    for (d, &chosen) in out.iter().enumerate() {
                        let row = d / 3;
                        let u = row;
                        let c = d * slots..(d + 1) * slots;
                        let value = |k: usize| {
                            let j = p.items[k];
                            let g = memory_gain(&s, u, j);
                            let hard = sigmoid(scores[k] - anchor_scores[row]);
                            match crit {
                                Criterion::Gain { beta } => hard * (1.0 + beta * (g - g0)).max(0.0),
                                Criterion::GainAdditive { beta } => hard + beta * (g - g0),
                                _ => g,
                            }
                        };
                        let best = c
                            .clone()
                            .fold(c.start, |b, k| if value(k) > value(b) { k } else { b });
                        assert_eq!(chosen, p.items[best], "{crit:?} g0={g0} ({name}): draw {d}");
                    }
                }
            }
        }
    }
}

/// The pruned gain argmax returns what the full scan returns, for gains
/// from memory and from the two-snapshot cache, any g0 and β >= 0.
#[test]
fn pruned_gain_argmax_equals_the_full_scan() {
    let train = data();
    let mut rng = Rng::new(23);
    let mut draws = 0;
    for &g0 in &[0.5f32, 1.5, -0.5, 0.0, 1.0, 3.0] {
        for &beta in &[0.0f32, 0.5, 1.0, 4.0, 50.0] {
            let mut s = sampler(train.clone(), 8, 3, 5, Criterion::Gain { beta }, 0.0, g0);
            s.refresh_embeddings(emb(&train, 1)).unwrap();
            s.refresh_embeddings(emb(&train, 2)).unwrap();
            s.refresh_embeddings(emb(&train, 3)).unwrap();
            let ctx = s.context();
            for _ in 0..300 {
                let u = rng.below(40) as usize;
                let width = 1 + rng.below(super::criteria::PRUNE_MAX as u64) as usize;
                let mut items = Vec::with_capacity(width);
                let mut scores = Vec::with_capacity(width);
                for _ in 0..width {
                    let j = if rng.uniform() < 0.5 {
                        let r = s.memory().range(u);
                        s.memory().items[r.start + rng.below(8) as usize] as i64
                    } else {
                        rng.below(50) as i64
                    };
                    items.push(j.max(0));
                    // Coarse scores: ties in hardness happen.
                    scores.push((rng.below(7) as f32 - 3.0) * 0.5);
                }
                let anchor = train.row(u)[0] as i64;
                let a = ctx.choose_gain_argmax(u, anchor, 0.25, &items, &scores, beta);
                let b = ctx.choose_scan(u, anchor, 0.25, &items, &scores, &mut rng);
                assert_eq!(
                    a, b,
                    "g0={g0} beta={beta} items={items:?} scores={scores:?}"
                );
                draws += 1;
            }
        }
    }
    assert_eq!(draws, 6 * 5 * 300);
}

/// With a temperature, picks follow softmax(criterion / temperature).
#[test]
fn temperature_samples_the_softmax_of_the_criterion() {
    let train = data();
    let mut rng = Rng::new(5);
    let t = 0.5f32;
    let mut s = sampler(train.clone(), 3, 3, 0, Criterion::GainOnly, t, 0.5);
    known_memory(&mut s, &mut rng);
    let n = 20_000;
    let users = vec![7i64; n];
    let p = s.propose(&users, None, 1).unwrap();
    let scores = vec![0f32; p.items.len()];
    let out = s.select(&users, &p, 1, &scores, &vec![0f32; n]).unwrap();
    let r = s.memory().range(7);
    let items: Vec<i64> = s.memory().items[r.clone()]
        .iter()
        .map(|&i| i as i64)
        .collect();
    let weights: Vec<f64> = r.map(|p| ((s.memory().g[p] / t) as f64).exp()).collect();
    let total: f64 = weights.iter().sum();
    for (j, w) in items.iter().zip(&weights) {
        let freq = out.iter().filter(|&&o| o == *j).count() as f64 / n as f64;
        assert!((freq - w / total).abs() < 0.02, "{freq} vs {}", w / total);
    }
}

/// A refresh that fails (scores overflow) changes nothing; a sampler that
/// never refreshed still refuses to draw.
#[test]
fn a_failed_refresh_changes_nothing() {
    let train = data();
    // Built past `Embeddings::new`, which refuses vectors this large: the
    // refresh's own check of its scores must still leave the sampler as it was.
    let huge = || {
        let d = 4;
        Embeddings {
            dim: d,
            users: vec![1e30f32; train.n_users() * d],
            items: vec![1e30f32; train.n_items() * d],
        }
    };
    let mut s = gain_sampler(train.clone());
    assert!(s.refresh_embeddings(huge()).is_err());
    assert!(!s.has_embeddings());
    assert_eq!(s.stream(), crate::sampling::Stream::new(7));
    assert!(s.draw_from_vectors(&[0, 1], None, 2).is_err());

    s.refresh_embeddings(emb(&train, 1)).unwrap();
    s.refresh_embeddings(emb(&train, 2)).unwrap();
    let (memory, stream, snapshots) = (s.memory().state(), s.stream(), s.snapshots());
    let users: Vec<i64> = (0..40).collect();
    let probe = |s: &mut DynamicSampler| {
        let keep = s.stream();
        let out = s.draw_from_vectors(&users, None, 3).unwrap();
        s.set_stream(keep);
        out
    };
    let before = probe(&mut s);
    assert!(s.refresh_embeddings(huge()).is_err());
    assert_eq!(format!("{:?}", s.memory().state()), format!("{memory:?}"));
    assert_eq!((s.stream(), s.snapshots()), (stream, snapshots));
    assert_eq!(probe(&mut s), before);
}

#[test]
fn impossible_sizes_are_errors_naming_the_value() {
    let train = data();
    let cfg = |slots: usize| {
        DynamicSampler::new(
            train.clone(),
            Proposal::Uniform,
            RefreshConfig {
                slots,
                fresh: 1,
                history: 1,
                retain: Retain::TopH,
                alpha: 0.2,
                eps: 1e-6,
                g0: 0.5,
                max_positives: None,
                gain_window: 1,
            },
            DrawConfig {
                memory_candidates: 1,
                fresh_candidates: 1,
                criterion: Criterion::Gain { beta: 1.0 },
                temperature: 0.0,
                gain_positives: 1 << 62,
                memory_step: false,
                gain_warmup: 0.0,
            },
            1,
        )
    };
    let e = cfg(1 << 62).err().unwrap();
    assert!(e.message.contains("4611686018427387904"), "{e}");
    assert!(cfg(usize::MAX).is_err());
    // A huge gain_positives is capped by the longest row: it works.
    let mut s = cfg(4).unwrap();
    s.refresh_embeddings(emb(&train, 1)).unwrap();
    s.refresh_embeddings(emb(&train, 2)).unwrap();
    assert!(s.draw_from_vectors(&[0], None, 1 << 62).is_err());
    assert_eq!(s.draw_from_vectors(&[0, 3], None, 2).unwrap().len(), 4);
}

#[test]
fn restore_validates_before_changing_anything() {
    let train = data();
    let mut s = gain_sampler(train.clone());
    let good = s.memory().state();
    let mut bad = good.clone();
    bad.items[0] = 50;
    assert!(s.restore_memory(bad, 1).is_err());
    let mut bad = good.clone();
    bad.items[0] = 3;
    bad.g[0] = 7.0;
    assert!(s.restore_memory(bad, 1).is_err());
    let bad = MemoryState {
        items: vec![-1; 3],
        ..good.clone()
    };
    assert!(s.restore_memory(bad, 1).is_err());
    assert_eq!(format!("{:?}", s.memory().state()), format!("{good:?}"));
    assert_eq!(s.refreshes(), 0);
}

/// The veto picks the hardest candidate whose gain passes the threshold,
/// or the hardest of all when none does.
#[test]
fn gain_veto_picks_the_hardest_candidate_it_does_not_veto() {
    let train = data();
    let mut rng = Rng::new(29);
    let slots = 6;
    for &threshold in &[0.2f32, 0.5, 0.8, 2.0] {
        let crit = Criterion::GainVeto { threshold };
        let mut s = sampler(train.clone(), slots, slots, 0, crit, 0.0, 0.5);
        known_memory(&mut s, &mut rng);
        let users: Vec<i64> = (0..40).collect();
        let p = s.propose(&users, None, 3).unwrap();
        let scores: Vec<f32> = p
            .items
            .iter()
            .map(|_| (rng.uniform() as f32 - 0.5) * 6.0)
            .collect();
        let anchor_scores: Vec<f32> = (0..40).map(|_| rng.uniform() as f32 - 0.5).collect();
        let out = s.select(&users, &p, 3, &scores, &anchor_scores).unwrap();
        let mut vetoed_all = 0;
        for (d, &chosen) in out.iter().enumerate() {
            let row = d / 3;
            let hard = |k: usize| sigmoid(scores[k] - anchor_scores[row]);
            let hardest = |ks: &[usize]| {
                ks.iter()
                    .copied()
                    .fold(None, |b: Option<usize>, k| match b {
                        Some(b) if hard(b) >= hard(k) => Some(b),
                        _ => Some(k),
                    })
                    .unwrap()
            };
            let all: Vec<usize> = (d * slots..(d + 1) * slots).collect();
            let passing: Vec<usize> = all
                .iter()
                .copied()
                .filter(|&k| memory_gain(&s, row, p.items[k]) >= threshold)
                .collect();
            let want = if passing.is_empty() {
                vetoed_all += 1;
                hardest(&all)
            } else {
                hardest(&passing)
            };
            assert_eq!(chosen, p.items[want], "threshold {threshold}: draw {d}");
        }
        // A threshold above every gain vetoes everything: plain hardness.
        if threshold > 1.5 {
            assert_eq!(vetoed_all, out.len());
        }
    }
    // A draw temperature makes no sense for a veto.
    let mut cfg = *sampler(train.clone(), 4, 4, 0, Criterion::Hardness, 0.0, 0.5).draw_config();
    cfg.criterion = Criterion::GainVeto { threshold: 0.5 };
    cfg.temperature = 1.0;
    assert!(cfg.validate().is_err());
}

/// With `gain_warmup`, β ramps from 0: at epoch 0 the gain criterion is
/// plain hardness, after the warm-up it is the full criterion.
#[test]
fn gain_warmup_ramps_beta_from_zero() {
    let train = data();
    let slots = 6;
    let draws = |warmup: f32, epoch: u64, crit: Criterion, rng: &mut Rng| {
        let mut s = sampler(train.clone(), slots, slots, 0, crit, 0.0, 0.5);
        let mut cfg = *s.draw_config();
        cfg.gain_warmup = warmup;
        s = DynamicSampler::new(
            train.clone(),
            Proposal::Uniform,
            *s.refresh_config(),
            cfg,
            3,
        )
        .unwrap();
        known_memory(&mut s, &mut Rng::new(5));
        s.set_epoch(epoch);
        let users: Vec<i64> = (0..40).collect();
        let p = s.propose(&users, None, 3).unwrap();
        let scores: Vec<f32> = p
            .items
            .iter()
            .map(|_| (rng.uniform() as f32 - 0.5) * 6.0)
            .collect();
        let anchors: Vec<f32> = (0..40).map(|_| 0.0).collect();
        s.select(&users, &p, 3, &scores, &anchors).unwrap()
    };
    let gain = Criterion::Gain { beta: 5.0 };
    let seed = |n| Rng::new(n);
    // Epoch 0 of a 10-epoch warm-up: β = 0, the pick is the hardest.
    assert_eq!(
        draws(10.0, 0, gain, &mut seed(1)),
        draws(0.0, 0, Criterion::Hardness, &mut seed(1))
    );
    // Past the warm-up: the full β.
    assert_eq!(
        draws(10.0, 12, gain, &mut seed(2)),
        draws(0.0, 12, gain, &mut seed(2))
    );
    // Halfway: β / 2.
    assert_eq!(
        draws(10.0, 5, gain, &mut seed(3)),
        draws(0.0, 5, Criterion::Gain { beta: 2.5 }, &mut seed(3))
    );
}

/// The normalised gain criterion picks the argmax of
/// `hard·max(0, 1 + β·(G − μ_u)/σ_u)` over each draw's candidates, with the
/// user's memory statistics.
#[test]
fn normalised_gain_picks_what_its_formula_says() {
    let train = data();
    let mut rng = Rng::new(37);
    let slots = 6;
    for &beta in &[0.0f32, 0.5, 2.0] {
        let crit = Criterion::GainNormalized { beta };
        let mut s = sampler(train.clone(), slots, slots, 0, crit, 0.0, 0.5);
        known_memory(&mut s, &mut rng);
        let users: Vec<i64> = (0..40).collect();
        let p = s.propose(&users, None, 2).unwrap();
        let scores: Vec<f32> = p
            .items
            .iter()
            .map(|_| (rng.uniform() as f32 - 0.5) * 6.0)
            .collect();
        let anchor_scores: Vec<f32> = (0..40).map(|_| rng.uniform() as f32 - 0.5).collect();
        let out = s.select(&users, &p, 2, &scores, &anchor_scores).unwrap();
        for (d, &chosen) in out.iter().enumerate() {
            let u = d / 2;
            let m = s.memory();
            let gs: Vec<f64> = m.range(u).map(|k| f64::from(m.g[k])).collect();
            let mean = gs.iter().sum::<f64>() / gs.len() as f64;
            let sd =
                (gs.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / gs.len() as f64).sqrt();
            let value = |k: usize| {
                let z = (f64::from(memory_gain(&s, u, p.items[k])) - mean) / sd;
                f64::from(sigmoid(scores[k] - anchor_scores[u]))
                    * (1.0 + f64::from(beta) * z).max(0.0)
            };
            let c = d * slots..(d + 1) * slots;
            let best = c.clone().fold(
                c.start,
                |b, k| if value(k) > value(b) + 1e-6 { k } else { b },
            );
            let got = c.clone().find(|&k| p.items[k] == chosen).unwrap();
            // f32 against f64 arithmetic: the pick is the argmax up to rounding.
            assert!(
                (value(got) - value(best)).abs() < 1e-4,
                "beta {beta}: draw {d} chose {got}, argmax {best}"
            );
        }
    }
}

/// `H` of item `j` for user `u` under `e`, over every positive.
fn expectation_under(train: &Interactions, e: &Embeddings, u: usize, j: usize) -> f32 {
    let uv = e.user(u);
    let s_j = e.score(uv, j);
    let row = train.row(u);
    let sum: f32 = row
        .iter()
        .map(|&i| sigmoid(s_j - e.score(uv, i as usize)))
        .sum();
    sum / row.len() as f32
}

#[test]
fn windowed_gain_measures_the_fall_of_h_over_the_window() {
    let train = data();
    let window = 3;
    let mut s = windowed_sampler(train.clone(), window, Criterion::Gain { beta: 1.0 });
    let snapshots: Vec<Embeddings> = (1..=6).map(|k| emb(&train, k)).collect();
    let mut before = None;
    for e in &snapshots {
        before = Some(s.memory.state());
        s.refresh_embeddings(e.clone()).unwrap();
    }
    let before = before.unwrap();
    let (now, then) = (&snapshots[5], &snapshots[5 - window]);
    let mut checked = 0;
    for u in 0..train.n_users() {
        for slot in s.memory.range(u) {
            let j = s.memory.items[slot];
            if j < 0 || s.memory.obs[slot] < (window + 1) as u32 {
                continue;
            }
            let prev = s
                .memory
                .range(u)
                .find(|&p| before.items[p] == j)
                .expect("a slot observed 4 times was in memory before");
            let h_now = expectation_under(&train, now, u, j as usize);
            let h_then = expectation_under(&train, then, u, j as usize);
            let fall = (h_then - h_now) / (window as f32 * (h_now + 1e-6));
            let want = 0.2 * before.g[prev] + 0.8 * sigmoid(fall);
            let got = s.memory.g[slot];
            assert!(
                (got - want).abs() < 1e-4,
                "user {u} item {j}: G {got} != {want}"
            );
            assert!((s.memory.h[slot] - h_now).abs() < 1e-4);
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} slots spanned the window");
}

#[test]
fn windowed_gain_needs_the_history_it_reads() {
    let cfg = |history, gain_window| RefreshConfig {
        slots: 4,
        fresh: 4,
        history,
        retain: Retain::TopH,
        alpha: 0.2,
        eps: 1e-6,
        g0: 0.5,
        max_positives: None,
        gain_window,
    };
    assert!(cfg(0, 1).validate().is_ok());
    assert!(cfg(4, 3).validate().is_ok());
    let e = cfg(3, 3).validate().unwrap_err().to_string();
    assert!(
        e.contains("gain_window=3") && e.contains("history=3"),
        "{e}"
    );
    assert!(cfg(4, 0).validate().is_err());
}

fn windowed_sampler(
    train: Arc<Interactions>,
    window: usize,
    criterion: Criterion,
) -> DynamicSampler {
    DynamicSampler::new(
        train,
        Proposal::Uniform,
        RefreshConfig {
            slots: 8,
            fresh: 8,
            history: window + 1,
            retain: Retain::TopH,
            alpha: 0.2,
            eps: 1e-6,
            g0: 0.5,
            max_positives: None,
            gain_window: window,
        },
        DrawConfig {
            memory_candidates: 0,
            fresh_candidates: 6,
            criterion,
            temperature: 0.0,
            gain_positives: 16,
            memory_step: false,
            gain_warmup: 0.0,
        },
        5,
    )
    .unwrap()
}

/// With `gain_window = W` the sampler keeps the last `W` snapshots before
/// the current one, and the draw-time gain of a candidate compares `H`
/// under the current snapshot with `H` under the oldest, per refresh.
#[test]
fn draw_time_gain_spans_the_window() {
    let train = data();
    let window = 3;
    let mut s = windowed_sampler(train.clone(), window, Criterion::GainOnly);
    let snapshots: Vec<Embeddings> = (1..=5).map(|k| emb(&train, 10 + k)).collect();
    for (n, e) in snapshots.iter().enumerate() {
        s.set_embeddings(e.clone()).unwrap();
        assert_eq!(s.embeddings().1.len(), n.min(window));
    }
    let (now, then) = (&snapshots[4], &snapshots[4 - window]);
    assert_eq!(s.embeddings().1.front().unwrap().users, then.users);
    let users: Vec<i64> = (0..40).collect();
    let p = s.propose(&users, None, 2).unwrap();
    let scores: Vec<f32> = p
        .items
        .iter()
        .enumerate()
        .map(|(k, &j)| {
            let u = users[k / (2 * 6)] as usize;
            now.score(now.user(u), j as usize)
        })
        .collect();
    let out = s.select(&users, &p, 2, &scores, &[0.0; 40]).unwrap();
    for (d, &chosen) in out.iter().enumerate() {
        let u = users[d / 2] as usize;
        let gain = |j: i64| {
            let h_now = expectation_under(&train, now, u, j as usize);
            let h_then = expectation_under(&train, then, u, j as usize);
            0.1 + 0.8 * sigmoid((h_then - h_now) / (window as f32 * (h_now + 1e-6)))
        };
        let best = p.items[d * 6..(d + 1) * 6]
            .iter()
            .map(|&j| gain(j))
            .fold(f32::NEG_INFINITY, f32::max);
        assert!(
            gain(chosen) >= best - 1e-5,
            "draw {d}: G {} < best {best}",
            gain(chosen)
        );
        // And the engine's value itself, lag included.
        let engine = s
            .context()
            .gain(u, chosen, now.score(now.user(u), chosen as usize));
        assert!((engine - gain(chosen)).abs() < 1e-5, "draw {d}: {engine}");
    }
}

/// A failed refresh of a windowed sampler leaves its snapshots, memory and
/// stream as they were, and a state round trip keeps every snapshot.
#[test]
fn windowed_snapshots_survive_failures_and_restores() {
    let train = data();
    // Built past `Embeddings::new`, which refuses vectors this large: the
    // refresh's own check of its scores must still leave the sampler as it was.
    let huge = || {
        let d = 4;
        Embeddings {
            dim: d,
            users: vec![1e30f32; train.n_users() * d],
            items: vec![1e30f32; train.n_items() * d],
        }
    };
    let mut s = windowed_sampler(train.clone(), 2, Criterion::Gain { beta: 3.0 });
    for k in 0..4 {
        s.refresh_embeddings(emb(&train, 20 + k)).unwrap();
    }
    let users: Vec<i64> = (0..40).collect();
    let probe = |s: &mut DynamicSampler| {
        let keep = s.stream();
        let out = s.draw_from_vectors(&users, None, 3).unwrap();
        s.set_stream(keep);
        out
    };
    let before = probe(&mut s);
    let past: Vec<Vec<f32>> = s.embeddings().1.iter().map(|e| e.items.clone()).collect();
    assert_eq!(past.len(), 2);
    assert!(s.refresh_embeddings(huge()).is_err());
    let after: Vec<Vec<f32>> = s.embeddings().1.iter().map(|e| e.items.clone()).collect();
    assert_eq!(after, past);
    assert_eq!(probe(&mut s), before);

    let mut t = windowed_sampler(train.clone(), 2, Criterion::Gain { beta: 3.0 });
    t.restore_memory(s.memory().state(), s.refreshes()).unwrap();
    let (now, kept) = s.embeddings();
    t.restore_embeddings(kept.iter().cloned().collect(), now.cloned(), s.snapshots())
        .unwrap();
    t.set_stream(s.stream());
    assert_eq!(probe(&mut t), before);
    // More snapshots than the window keeps, or past ones without a current one.
    let three = vec![emb(&train, 1), emb(&train, 2), emb(&train, 3)];
    assert!(t
        .restore_embeddings(three, Some(emb(&train, 4)), 9)
        .is_err());
    assert!(t.restore_embeddings(vec![emb(&train, 1)], None, 9).is_err());
    assert_eq!(probe(&mut t), before);
}

#[test]
fn a_positive_that_is_not_a_training_item_is_refused_naming_it() {
    let train = data();
    let mut s = gain_sampler(train.clone());
    s.refresh_embeddings(emb(&train, 1)).unwrap();
    let (u, own) = (3i64, train.row(3)[0] as i64);
    let other = (0..50i64).find(|&i| !train.contains(3, i as u32)).unwrap();
    assert!(s.draw_from_vectors(&[u, u], Some(&[own, own]), 2).is_ok());
    let before = s.stream();
    for result in [
        s.draw_from_vectors(&[u, u], Some(&[own, other]), 2)
            .map(|_| ()),
        s.propose(&[u, u], Some(&[own, other]), 2).map(|_| ()),
    ] {
        let e = result.unwrap_err();
        assert!(
            e.message.contains(&format!("positives[1] is item {other}"))
                && e.message.contains("user 3 (users[1])"),
            "{e}"
        );
    }
    // Refused before the stream moved.
    assert_eq!(s.stream(), before);
}
