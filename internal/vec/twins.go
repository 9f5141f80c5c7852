package vec

// The pure-Go twins of the assembly kernels. Each performs the same float32
// operations in the same order as its kernel, so that the two agree bit for
// bit: reductions keep 32 partial sums per row (element j in sum j mod 32)
// combined by sum32, and every product that is then added is rounded
// explicitly (float32(x*y)), which forbids the compiler to fuse the two
// into an FMA the kernels do not use.

// sum32 combines 32 partial sums in the kernels' order: (a[i]+a[16+i]) +
// (a[8+i]+a[24+i]) for i < 8, then halves folded 8→4→2→1.
func sum32(a *[32]float32) float32 {
	var s8 [8]float32
	for i := range s8 {
		s8[i] = (a[i] + a[16+i]) + (a[8+i] + a[24+i])
	}
	var s4 [4]float32
	for i := range s4 {
		s4[i] = s8[i] + s8[4+i]
	}
	return (s4[0] + s4[2]) + (s4[1] + s4[3])
}

func rowStatsGo(x []float32, rows, cols, stride int, out []float32) {
	for r := 0; r < rows; r++ {
		row := x[r*stride:][:cols]
		var a [32]float32
		for j, v := range row {
			a[j&31] += v
		}
		s := sum32(&a)
		m := s / float32(cols)
		var q, d [32]float32
		for j, v := range row {
			e := v - m
			d[j&31] += e
			q[j&31] += float32(e * e)
		}
		o := out[3*r:][:3]
		o[0], o[1], o[2] = s, sum32(&q), sum32(&d)
	}
}

// bn1 is the BatchNorm output ((x−mean)·invStd)·g + b, rounded after each
// operation as the kernels do.
func bn1(x, mean, invStd, g, b float32) float32 {
	return float32(float32((x-mean)*invStd)*g) + b
}

func normalizeGo(y, x []float32, rows, cols, stride int, mean, invStd, g, b float32) {
	for r := 0; r < rows; r++ {
		ys := y[r*stride:][:cols]
		for j, v := range x[r*stride:][:cols] {
			ys[j] = bn1(v, mean, invStd, g, b)
		}
	}
}

func normalizeReLUGo(y, x []float32, rows, cols, stride int, mean, invStd, g, b float32) {
	for r := 0; r < rows; r++ {
		ys := y[r*stride:][:cols]
		for j, v := range x[r*stride:][:cols] {
			ys[j] = relu1(bn1(v, mean, invStd, g, b))
		}
	}
}

// relu1 is the kernels' VMAXPS(0, t): t unless 0 > t, so NaN and −0 pass.
func relu1(t float32) float32 {
	if 0 > t {
		return 0
	}
	return t
}

func gradStatsGo(dy, x []float32, rows, cols, stride int, mean float32, out []float32) {
	for r := 0; r < rows; r++ {
		xs := x[r*stride:][:cols]
		var s1, s2 [32]float32
		for j, d := range dy[r*stride:][:cols] {
			s1[j&31] += d
			s2[j&31] += float32(d * (xs[j] - mean))
		}
		out[2*r], out[2*r+1] = sum32(&s1), sum32(&s2)
	}
}

func gradStatsReLUGo(dy, x []float32, rows, cols, stride int, mean, invStd, g, b float32, out []float32) {
	for r := 0; r < rows; r++ {
		xs := x[r*stride:][:cols]
		var s1, s2 [32]float32
		for j, d := range dy[r*stride:][:cols] {
			v := xs[j]
			if !(bn1(v, mean, invStd, g, b) > 0) {
				d = 0
			}
			s1[j&31] += d
			s2[j&31] += float32(d * (v - mean))
		}
		out[2*r], out[2*r+1] = sum32(&s1), sum32(&s2)
	}
}

func gradApplyGo(dx, dy, x []float32, rows, cols, stride int, mean, r, mdy, k float32) {
	for i := 0; i < rows; i++ {
		xs := x[i*stride:][:cols]
		dxs := dx[i*stride:][:cols]
		for j, d := range dy[i*stride:][:cols] {
			e := float32((xs[j] - mean) * r)
			dxs[j] = ((d - mdy) - e) * k
		}
	}
}

func gradApplyReLUGo(dx, dy, x []float32, rows, cols, stride int, mean, r, mdy, k, invStd, g, b float32) {
	for i := 0; i < rows; i++ {
		xs := x[i*stride:][:cols]
		dxs := dx[i*stride:][:cols]
		for j, d := range dy[i*stride:][:cols] {
			v := xs[j]
			if !(bn1(v, mean, invStd, g, b) > 0) {
				d = 0
			}
			e := float32((v - mean) * r)
			dxs[j] = ((d - mdy) - e) * k
		}
	}
}

func addGo(y, a, b []float32) {
	a, b = a[:len(y)], b[:len(y)]
	for i := range y {
		y[i] = a[i] + b[i]
	}
}

func addReLUGo(y, a, b []float32) {
	a, b = a[:len(y)], b[:len(y)]
	for i := range y {
		y[i] = relu1(a[i] + b[i])
	}
}

func reluGo(y, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] = relu1(x[i])
	}
}

func maskPositiveGo(dx, dy, y []float32) {
	dy, y = dy[:len(dx)], y[:len(dx)]
	for i := range dx {
		if y[i] > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}

// im2colSameGo writes, for each channel c of x (ch planes of h×w) and each
// tap (ki, kj) of a kh×kw kernel, output rows [lo, hi) of the plane shifted
// by (dy, dx) = (ki−pad, kj−pad) into col[((c*kh+ki)*kw+kj)*(hi−lo)*w:]:
// element (r, j) is x_c[(r+dy)*w + j+dx], or 0 where that falls outside
// the plane.
func im2colSameGo(col, x []float32, ch, h, w, kh, kw, pad, lo, hi int) {
	hw, n := h*w, (hi-lo)*w
	for c := 0; c < ch; c++ {
		im2colPlaneGo(col[c*kh*kw*n:], x[c*hw:][:hw], h, w, kh, kw, pad, lo, hi)
	}
}

// im2colPlaneGo is im2colSameGo for one channel. Each plane is one long
// copy of x shifted by dy·w+dx, then the columns that wrapped around a row
// edge are zeroed: far fewer calls than a copy per row when rows are 8 to
// 32 floats.
func im2colPlaneGo(col, x []float32, h, w, kh, kw, pad, lo, hi int) {
	hw, n := h*w, (hi-lo)*w
	for ki := 0; ki < kh; ki++ {
		dy := ki - pad
		// Output rows [rTop, rBot) read source rows inside the plane.
		rTop := min(max(-dy, lo), hi)
		rBot := max(min(h-dy, hi), rTop)
		for kj := 0; kj < kw; kj++ {
			dx := kj - pad
			plane := col[(ki*kw+kj)*n:][:n]
			if rBot == rTop || dx >= w || dx <= -w {
				clear(plane)
				continue
			}
			a, b := (rTop-lo)*w, (rBot-lo)*w
			clear(plane[:a])
			clear(plane[b:])
			// Output o of the plane reads x[o + shift]; at the two ends
			// that may run |dx| past x, where the outputs are wrapped
			// columns, zeroed below.
			shift := (lo+dy)*w + dx
			s0, s1 := a+shift, b+shift
			d0, d1 := a, b
			if s0 < 0 {
				d0 -= s0
				s0 = 0
			}
			if s1 > hw {
				d1 -= s1 - hw
				s1 = hw
			}
			copy(plane[d0:d1], x[s0:s1])
			switch {
			case dx < 0:
				for o := a; o < b; o += w {
					row := plane[o : o-dx]
					for j := range row {
						row[j] = 0
					}
				}
			case dx > 0:
				for o := a; o < b; o += w {
					row := plane[o+w-dx : o+w]
					for j := range row {
						row[j] = 0
					}
				}
			}
		}
	}
}
