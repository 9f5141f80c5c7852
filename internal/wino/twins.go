package wino

// The pure-Go twins of the assembly kernels. Each computes, for every tile
// the assembly computes (whole vectors of eight tiles, so also the slack
// past a row's last tile), the same sums and differences in the same order,
// so that the two agree bit for bit. Pixels outside the plane read as +0,
// as the assembly's masked loads give them.

// pix is x's pixel (r, c) of an h×w plane, 0 outside it.
func pix(x []float32, h, w, r, c int) float32 {
	if r < 0 || r >= h || c < 0 || c >= w {
		return 0
	}
	return x[r*w+c]
}

// inGo transforms each tile's columns first (Bᵀ d, per column of the
// patch) and then its rows, the assembly's order.
func inGo(v []float32, ldv int, x []float32, h, w, tw int, _ []int32, _ []float32) {
	th, nb := (h+1)/2, (tw+7)/8
	for ty := 0; ty < th; ty++ {
		for tx := 0; tx < 8*nb; tx++ {
			var s [4][4]float32
			for p := 0; p < 4; p++ {
				var c [4]float32
				for i := range c {
					c[i] = pix(x, h, w, 2*ty-1+i, 2*tx-1+p)
				}
				s[0][p], s[1][p], s[2][p], s[3][p] = c[0]-c[2], c[1]+c[2], c[2]-c[1], c[1]-c[3]
			}
			o := ty*tw + tx
			for k := 0; k < 4; k++ {
				v[(4*k)*ldv+o] = s[k][0] - s[k][2]
				v[(4*k+1)*ldv+o] = s[k][1] + s[k][2]
				v[(4*k+2)*ldv+o] = s[k][2] - s[k][1]
				v[(4*k+3)*ldv+o] = s[k][1] - s[k][3]
			}
		}
	}
}

func outGo(y, m []float32, ldm, h, w, tw int, bias float32, _ []int32) {
	th := (h + 1) / 2
	for ty := 0; ty < th; ty++ {
		for tx := 0; tx < tw; tx++ {
			o := ty*tw + tx
			var p [4][2]float32
			for i := 0; i < 4; i++ {
				x0, x1 := m[(4*i)*ldm+o], m[(4*i+1)*ldm+o]
				x2, x3 := m[(4*i+2)*ldm+o], m[(4*i+3)*ldm+o]
				p[i] = [2]float32{(x0 + x1) + x2, (x1 - x2) - x3}
			}
			for b := 0; b < 2; b++ {
				y0 := ((p[0][b] + p[1][b]) + p[2][b]) + bias
				y1 := ((p[1][b] - p[2][b]) - p[3][b]) + bias
				c := 2*tx + b
				if c >= w {
					continue
				}
				y[2*ty*w+c] = y0
				if 2*ty+1 < h {
					y[(2*ty+1)*w+c] = y1
				}
			}
		}
	}
}

func outTGo(dm []float32, ldm int, dy []float32, h, w, tw int, _ []int32) {
	th, nb := (h+1)/2, (tw+7)/8
	for ty := 0; ty < th; ty++ {
		for tx := 0; tx < 8*nb; tx++ {
			var r [2][4]float32
			for a := 0; a < 2; a++ {
				d0, d1 := pix(dy, h, w, 2*ty+a, 2*tx), pix(dy, h, w, 2*ty+a, 2*tx+1)
				r[a] = [4]float32{d0, d0 + d1, d0 - d1, -d1}
			}
			o := ty*tw + tx
			for j := 0; j < 4; j++ {
				dm[j*ldm+o] = r[0][j]
				dm[(4+j)*ldm+o] = r[0][j] + r[1][j]
				dm[(8+j)*ldm+o] = r[0][j] - r[1][j]
				dm[(12+j)*ldm+o] = -r[1][j]
			}
		}
	}
}

// inTGo mirrors the assembly's two passes per tile row ty (0..th, the last
// one with dV = 0): the first forms each tile's patch P = B dV Bᵀ, adds the
// bottom half of the previous tile row's patches (carried in c) to the top
// half and keeps its own bottom half; the second adds to each tile's middle
// columns the outer columns of its neighbours and stores two image rows.
// Row j of s holds tile t at 1+t: index 0 is the tile before the first, and
// the indices past the last tile stay 0.
func inTGo(dx, dv []float32, ldv, h, w, tw int, _ []int32, tmp []float32) {
	th, nb := (h+1)/2, (tw+7)/8
	sl := 8*nb + 8
	s, c := tmp[:8*sl], tmp[8*sl:16*sl]
	clear(tmp[:16*sl])
	for ty := 0; ty <= th; ty++ {
		for tx := 0; tx < 8*nb; tx++ {
			var d [4][4]float32
			if ty < th && tx < tw {
				for xi := 0; xi < 16; xi++ {
					d[xi/4][xi%4] = dv[xi*ldv+ty*tw+tx]
				}
			}
			var q [4][4]float32
			for k := 0; k < 4; k++ {
				q[0][k] = d[0][k]
				q[1][k] = (d[1][k] - d[2][k]) + d[3][k]
				q[2][k] = (d[1][k] + d[2][k]) - d[0][k]
				q[3][k] = -d[3][k]
			}
			for i := 0; i < 4; i++ {
				p := [4]float32{q[i][0], (q[i][1] - q[i][2]) + q[i][3], (q[i][1] + q[i][2]) - q[i][0], -q[i][3]}
				for j, v := range p {
					if i < 2 {
						s[(4*i+j)*sl+1+tx] = v + c[(4*i+j)*sl+tx]
					} else {
						c[(4*(i-2)+j)*sl+tx] = v
					}
				}
			}
		}
		for i := 0; i < 2; i++ {
			r := 2*ty - 1 + i
			if r < 0 || r >= h {
				continue
			}
			si := s[4*i*sl:]
			for k := 0; k < 8*nb; k++ {
				if col := 2 * k; col < w {
					dx[r*w+col] = si[sl+1+k] + si[3*sl+k]
				}
				if col := 2*k + 1; col < w {
					dx[r*w+col] = si[2*sl+1+k] + si[2+k]
				}
			}
		}
	}
}
