package wino

// The pure-Go twins of the F(4×4, 3×3) assembly kernels, with the same
// operations in the same order (see twins.go). The four one-dimensional
// transforms below are the whole arithmetic; the assembly computes each of
// their outputs with the same operations, one vector of eight tiles per
// value.

// bt6 is Bᵀ d.
func bt6(d [6]float32) (t [6]float32) {
	t[0] = 4*(d[0]-d[2]) + (d[4] - d[2])
	a, b := d[4]-4*d[2], d[3]-4*d[1]
	t[1], t[2] = a+b, a-b
	c, e := d[4]-d[2], 2*(d[3]-d[1])
	t[3], t[4] = c+e, c-e
	t[5] = 4*(d[1]-d[3]) + (d[5] - d[3])
	return t
}

// at4 is Aᵀ m.
func at4(m [6]float32) (y [4]float32) {
	s1, d1 := m[1]+m[2], m[1]-m[2]
	s2, d2 := m[3]+m[4], m[3]-m[4]
	y[0] = (m[0] + s1) + s2
	y[1] = d1 + 2*d2
	y[2] = s1 + 4*s2
	y[3] = (d1 + 8*d2) + m[5]
	return y
}

// a6 is A y, the adjoint of at4.
func a6(y [4]float32) [6]float32 {
	p, q := y[0]+y[2], y[1]+y[3]
	r, s := y[0]+4*y[2], 2*y[1]+8*y[3]
	return [6]float32{y[0], p + q, p - q, r + s, r - s, y[3]}
}

// b6 is B v, the adjoint of bt6.
func b6(v [6]float32) (o [6]float32) {
	a, b := v[1]+v[2], v[1]-v[2]
	c, d := v[3]+v[4], v[3]-v[4]
	e := v[0] + a
	o[0] = 4 * v[0]
	o[1] = 4*(v[5]-b) - 2*d
	o[2] = -4*e - (v[0] + c)
	o[3] = (b - v[5]) + 2*(d-2*v[5])
	o[4] = e + c
	o[5] = v[5]
	return o
}

// in4Go transforms each tile's columns first and then its rows.
func in4Go(v []float32, ldv int, x []float32, h, w, tw int, _ []int32, _ []float32) {
	th, nb := (h+3)/4, (tw+7)/8
	for ty := 0; ty < th; ty++ {
		for tx := 0; tx < 8*nb; tx++ {
			var s [6][6]float32
			for p := 0; p < 6; p++ {
				var c [6]float32
				for i := range c {
					c[i] = pix(x, h, w, 4*ty-1+i, 4*tx-1+p)
				}
				t := bt6(c)
				for k := range t {
					s[k][p] = t[k]
				}
			}
			o := ty*tw + tx
			for k := 0; k < 6; k++ {
				t := bt6(s[k])
				for j := range t {
					v[(6*k+j)*ldv+o] = t[j]
				}
			}
		}
	}
}

// out4Go transforms each tile's columns (over i) first, then its rows.
func out4Go(y, m []float32, ldm, h, w, tw int, bias float32, _ []int32) {
	th := (h + 3) / 4
	for ty := 0; ty < th; ty++ {
		for tx := 0; tx < tw; tx++ {
			o := ty*tw + tx
			var q [4][6]float32
			for j := 0; j < 6; j++ {
				var c [6]float32
				for i := range c {
					c[i] = m[(6*i+j)*ldm+o]
				}
				t := at4(c)
				for a := range t {
					q[a][j] = t[a]
				}
			}
			for a := 0; a < 4; a++ {
				r := 4*ty + a
				if r >= h {
					break
				}
				t := at4(q[a])
				for b := range t {
					if c := 4*tx + b; c < w {
						y[r*w+c] = t[b] + bias
					}
				}
			}
		}
	}
}

// outT4Go transforms each image row of a tile first (over its columns),
// then the columns of the result.
func outT4Go(dm []float32, ldm int, dy []float32, h, w, tw int, _ []int32, _ []float32) {
	th, nb := (h+3)/4, (tw+7)/8
	for ty := 0; ty < th; ty++ {
		for tx := 0; tx < 8*nb; tx++ {
			var r [4][6]float32
			for a := 0; a < 4; a++ {
				var d [4]float32
				for c := range d {
					d[c] = pix(dy, h, w, 4*ty+a, 4*tx+c)
				}
				r[a] = a6(d)
			}
			o := ty*tw + tx
			for j := 0; j < 6; j++ {
				t := a6([4]float32{r[0][j], r[1][j], r[2][j], r[3][j]})
				for i := range t {
					dm[(6*i+j)*ldm+o] = t[i]
				}
			}
		}
	}
}

// inT4Go mirrors the assembly's two passes per tile row ty (0..th, the
// last one with dV = 0). The first forms each tile's patch P = B dV Bᵀ
// (columns first), adds the last two rows of the previous tile row's
// patches (carried in c) to its first two and keeps its own last two; the
// second adds to each tile's inner columns the outer columns of its
// neighbours and stores four image rows. Row (i, j) of s holds tile t at
// 1+t: index 0 is the tile before the first, and the indices past the last
// tile stay 0.
func inT4Go(dx, dv []float32, ldv, h, w, tw int, _ []int32, tmp []float32) {
	th, nb := (h+3)/4, (tw+7)/8
	sl := 8*nb + 8
	s, c := tmp[:24*sl], tmp[24*sl:36*sl]
	clear(tmp[:36*sl])
	for ty := 0; ty <= th; ty++ {
		for tx := 0; tx < 8*nb; tx++ {
			var d [6][6]float32
			if ty < th && tx < tw {
				for xi := 0; xi < 36; xi++ {
					d[xi/6][xi%6] = dv[xi*ldv+ty*tw+tx]
				}
			}
			var q [6][6]float32
			for col := 0; col < 6; col++ {
				t := b6([6]float32{d[0][col], d[1][col], d[2][col], d[3][col], d[4][col], d[5][col]})
				for i := range t {
					q[i][col] = t[i]
				}
			}
			for i := 0; i < 6; i++ {
				p := b6(q[i])
				for j, v := range p {
					if j == 0 && i < 4 && tx >= tw {
						// Column j = 0 of the tile past the last reaches
						// the last tile's outputs; it must be +0, as the
						// packed kernels' lane shifts make it, where b6
						// could give −0.
						s[(6*i)*sl+1+tx] = 0
						continue
					}
					switch {
					case i < 2:
						s[(6*i+j)*sl+1+tx] = v + c[(6*i+j)*sl+tx]
					case i < 4:
						s[(6*i+j)*sl+1+tx] = v
					default:
						c[(6*(i-4)+j)*sl+tx] = v
					}
				}
			}
		}
		for i := 0; i < 4; i++ {
			r := 4*ty - 1 + i
			if r < 0 || r >= h {
				continue
			}
			si := s[6*i*sl:]
			for t := 0; t < 8*nb; t++ {
				// Column 4t: tile t's j=1 + tile t−1's j=5; 4t+3: tile
				// t's j=4 + tile t+1's j=0.
				vals := [4]float32{si[sl+1+t] + si[5*sl+t], si[2*sl+1+t], si[3*sl+1+t], si[4*sl+1+t] + si[2+t]}
				for k, v := range vals {
					if col := 4*t + k; col < w {
						dx[r*w+col] = v
					}
				}
			}
		}
	}
}
