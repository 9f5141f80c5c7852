package vec

// The pure-Go twins of the "fuse" set, written as the twins they fuse.

func normalizeAddGo(y, x, o []float32, rows, cols, stride int, mean, invStd, g, b float32) {
	for r := 0; r < rows; r++ {
		ys, ot := y[r*stride:][:cols], o[r*stride:][:cols]
		for j, v := range x[r*stride:][:cols] {
			ys[j] = bn1(v, mean, invStd, g, b) + ot[j]
		}
	}
}

func normalizeAddReLUGo(y, x, o []float32, rows, cols, stride int, mean, invStd, g, b float32) {
	for r := 0; r < rows; r++ {
		ys, ot := y[r*stride:][:cols], o[r*stride:][:cols]
		for j, v := range x[r*stride:][:cols] {
			ys[j] = relu1(bn1(v, mean, invStd, g, b) + ot[j])
		}
	}
}

func maskPositiveSumGo(dx, a, b, y []float32) {
	a, b, y = a[:len(dx)], b[:len(dx)], y[:len(dx)]
	for i := range dx {
		if y[i] > 0 {
			dx[i] = a[i] + b[i]
		} else {
			dx[i] = 0
		}
	}
}
