//! The k-means kernel: nearest centroids by blocked BLAS gemm + argmin, and the hashed
//! per-row random numbers the initialisations draw from.

use super::*;

/// Rows per BLAS block when computing distances: the block (256 KB at 32 features) and its
/// scores stay in L2 between the gemm and the argmin/sum loop that reads them
/// (`cargo bench --bench kmeans`).
pub(super) const BLOCK: usize = 1024;

/// A uniform number in (0, 1] from (seed, stream, global row): splitmix64 of the three.
pub(super) fn uniform(seed: u64, stream: u64, i: u64) -> f64 {
    let mut z =
        seed.wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(i.wrapping_mul(0xD1B5_4A32_D192_ED03)).wrapping_add(0x2545_F491_4F6C_DD1D);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// Visits every row of `x` (row-major, `d` columns) in order with the index of its nearest
/// centroid, the argmin over j of ‖c_j‖² − 2 x·c_j (‖x‖² is the same for every j, so it is left
/// out). Up to 16 centroids, [`nearest_few`] forms the scores row by row; beyond, one BLAS gemm
/// per block of rows gives all those scores at once, computed straight into
/// a k × rows buffer prefilled with ‖c_j‖² (alpha = −2, beta = 1: no separate scaling pass); the
/// argmin then runs across rows, which vectorises. Ties go to the lowest j, as numpy's argmin.
/// `x` may have any row stride (rows of a memory-mapped file with more columns); columns that
/// are not unit-stride are copied first.
pub(super) fn nearest(x: ArrayView2<f64>, c: &Array2<f64>, visit: impl FnMut(usize, &[f64], usize)) {
    let x = if x.ncols() > 1 && x.strides()[1] != 1 { ndarray::CowArray::from(x.as_standard_layout().into_owned()) } else { x.into() };
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { nearest_avx2(x.view(), c, visit) };
    }
    nearest_any(x.view(), c, visit)
}

/// [`nearest`] compiled for AVX2: the argmin and the caller's per-row work (sums, distances) are
/// the part of a Lloyd step that is not BLAS, and baseline x86-64 (SSE2) runs them as
/// branchy scalar code (`cargo bench --bench kmeans`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nearest_avx2(x: ArrayView2<f64>, c: &Array2<f64>, visit: impl FnMut(usize, &[f64], usize)) {
    nearest_any(x, c, visit)
}

#[inline(always)]
pub(super) fn nearest_any(x: ArrayView2<f64>, c: &Array2<f64>, mut visit: impl FnMut(usize, &[f64], usize)) {
    let k = c.nrows();
    let cn: Vec<f64> = c.rows().into_iter().map(|r| r.dot(&r)).collect();
    match k {
        0 => {}
        1..=4 => return nearest_few::<4>(x, c, &cn, visit),
        5..=8 => return nearest_few::<8>(x, c, &cn, visit),
        9..=16 => return nearest_few::<16>(x, c, &cn, visit),
        _ => {}
    }
    let n = x.nrows();
    let mut g = Array2::<f64>::zeros((k, BLOCK.min(n)));
    let mut label = vec![0usize; BLOCK.min(n)];
    for start in (0..n).step_by(BLOCK) {
        let m = BLOCK.min(n - start);
        let xb = x.slice(s![start..start + m, ..]);
        let mut gb = g.slice_mut(s![.., ..m]);
        for (mut gj, &v) in gb.rows_mut().into_iter().zip(&cn) {
            gj.fill(v);
        }
        ndarray::linalg::general_mat_mul(-2.0, c, &xb.t(), 1.0, &mut gb);
        // Score of row i for centroid j: gs[j * stride + i].
        let (gs, stride) = (g.as_slice().unwrap(), g.ncols());
        // LANES rows at a time, their running minimum kept in registers across the k
        // centroids; labels as u64 so that the selects have one lane width and vectorise.
        const LANES: usize = 8;
        let full = m - m % LANES;
        for i in (0..full).step_by(LANES) {
            let mut b = [f64::INFINITY; LANES];
            let mut l = [0u64; LANES];
            for j in 0..k {
                let v: &[f64; LANES] = gs[j * stride + i..][..LANES].try_into().unwrap();
                for t in 0..LANES {
                    let closer = v[t] < b[t];
                    b[t] = if closer { v[t] } else { b[t] };
                    l[t] = if closer { j as u64 } else { l[t] };
                }
            }
            for t in 0..LANES {
                label[i + t] = l[t] as usize;
            }
        }
        for (i, l) in label.iter_mut().enumerate().take(m).skip(full) {
            *l = (1..k).fold(0, |b, j| if gs[j * stride + i] < gs[b * stride + i] { j } else { b });
        }
        // While visiting this block, fetch the next one from memory, so the next gemm reads it
        // from cache: otherwise BLAS's packing copy waits for DRAM and nothing overlaps it.
        let next = x.slice(s![start + m..(start + 2 * m).min(n), ..]);
        for (i, (row, &l)) in xb.rows().into_iter().zip(&label).enumerate() {
            if i < next.nrows() {
                for line in next.row(i).iter().step_by(8) {
                    prefetch(line);
                }
            }
            visit(start + i, row.to_slice().expect("unit-stride columns"), l);
        }
    }
}

/// [`nearest`] for at most `L` centroids, without BLAS: for a few centroids, a gemm spends its
/// time packing the rows into its own layout (a copy of every row, every step), not computing.
/// Here each row is read once, from where it lies: its dot products with all centroids are
/// formed together, one fused multiply-add per column and centroid into `L` running sums (the
/// centroids transposed and padded to `L` lanes, in L1), four rows at a time so that the sums
/// are independent chains. Each row's sums are added in column order whether it falls in a group
/// of four or not, so a row's label depends on the row and the centroids alone.
#[inline(always)]
fn nearest_few<const L: usize>(x: ArrayView2<f64>, c: &Array2<f64>, cn: &[f64], mut visit: impl FnMut(usize, &[f64], usize)) {
    let (k, d) = c.dim();
    // ct[t][j] = c[j][t]; lanes past k stay 0 and are never compared.
    let mut ct = vec![[0.0; L]; d];
    for (j, cj) in c.rows().into_iter().enumerate() {
        for (t, v) in cj.iter().enumerate() {
            ct[t][j] = *v;
        }
    }
    let label = |acc: &[f64; L]| {
        let mut best = (cn[0] - 2.0 * acc[0], 0);
        for j in 1..k {
            let s = cn[j] - 2.0 * acc[j];
            if s < best.0 {
                best = (s, j);
            }
        }
        best.1
    };
    let n = x.nrows();
    let row = |i: usize| -> &[f64] { &x.row(i).to_slice().expect("unit-stride columns")[..d] };
    let flat: &[f64] = ct.as_flattened();
    let mut i = 0;
    while i + 4 <= n {
        let r = [row(i), row(i + 1), row(i + 2), row(i + 3)];
        let acc = dots4::<L>(r, flat);
        for (q, (a, r)) in acc.iter().zip(r).enumerate() {
            visit(i + q, r, label(a));
        }
        i += 4;
    }
    // The last rows one at a time, through the same kernel (each lane's sums are its row's own).
    for i in i..n {
        let r = row(i);
        visit(i, r, label(&dots4::<L>([r; 4], flat)[0]));
    }
}

/// The dot products of four rows with the `L` centroids of `ct` (`L` values per column), each
/// sum formed in column order with fused multiply-adds: the same bits by either path.
#[inline(always)]
pub(super) fn dots4<const L: usize>(r: [&[f64]; 4], ct: &[f64]) -> [[f64; L]; 4] {
    #[cfg(target_arch = "x86_64")]
    if L.is_multiple_of(4) && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features; the rows hold ct.len() / L values each.
        return unsafe { dots4_avx2::<L>(r, ct) };
    }
    dots4_portable(r, ct)
}

/// [`dots4`] in portable code.
pub(super) fn dots4_portable<const L: usize>(r: [&[f64]; 4], ct: &[f64]) -> [[f64; L]; 4] {
    let mut acc = [[0.0; L]; 4];
    for (t, ctt) in ct.chunks_exact(L).enumerate() {
        for (a, r) in acc.iter_mut().zip(&r) {
            for j in 0..L {
                a[j] = r[t].mul_add(ctt[j], a[j]);
            }
        }
    }
    acc
}

/// [`dots4`] in AVX2 registers: the compiler's own vectorisation of it spilled the 4 × `L` sums
/// to the stack and ran one scalar multiply-add at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots4_avx2<const L: usize>(r: [&[f64]; 4], ct: &[f64]) -> [[f64; L]; 4] {
    use std::arch::x86_64::*;
    let d = ct.len() / L;
    assert!(r.iter().all(|r| r.len() >= d));
    // At most 4 vectors of 4 lanes (L <= 16); only the first L / 4 are used.
    let v = L / 4;
    let mut acc = [[_mm256_setzero_pd(); 4]; 4];
    for t in 0..d {
        let c = ct.as_ptr().add(t * L);
        let cv = [_mm256_loadu_pd(c), _mm256_loadu_pd(c.add(4 % L)), _mm256_loadu_pd(c.add(8 % L)), _mm256_loadu_pd(c.add(12 % L))];
        for q in 0..4 {
            let x = _mm256_broadcast_sd(r[q].get_unchecked(t));
            for w in 0..v {
                acc[q][w] = _mm256_fmadd_pd(x, cv[w], acc[q][w]);
            }
        }
    }
    let mut out = [[0.0; L]; 4];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (w, a) in a.iter().take(v).enumerate() {
            _mm256_storeu_pd(o.as_mut_ptr().add(4 * w), *a);
        }
    }
    out
}

/// Hint the CPU to bring `v`'s cache line into L2 (not L1: a whole block is coming, and L1 is
/// for the block being worked on).
#[inline(always)]
pub(super) fn prefetch(v: &f64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults, and `v` is a valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>((v as *const f64).cast());
    }
}

/// ‖a − b‖², computed directly (no cancellation, unlike the expanded form).
pub(super) fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    // Four partial sums, so that the loop vectorises (a single running sum must stay in order).
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in ca.zip(cb) {
        for t in 0..4 {
            acc[t] += (x[t] - y[t]) * (x[t] - y[t]);
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}
