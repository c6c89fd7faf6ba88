// Package plot draws small line charts as PNG files: training curves next to a run.
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one named line of (x, y) points.
type Series struct {
	Name  string
	X, Y  []float64
	Color color.RGBA
}

const (
	width, height          = 720, 420
	left, right, top, down = 64, 20, 30, 40
)

// Lines writes series as a PNG line chart with axes, ticks and a legend. Non-finite
// points are skipped. The file is written atomically.
func Lines(path, title, xLabel string, series []Series) error {
	return Grid(path, 1, []Panel{{Title: title, XLabel: xLabel, Series: series}})
}

// Panel is one chart of a grid.
type Panel struct {
	Title, XLabel string
	Series        []Series
}

// Grid writes panels as one PNG, cols charts to a row, each as Lines draws it. A panel
// with no finite point is an error.
func Grid(path string, cols int, panels []Panel) error {
	if len(panels) == 0 || cols < 1 {
		return fmt.Errorf("plot: no panels")
	}
	cols = min(cols, len(panels))
	rows := (len(panels) + cols - 1) / cols
	img := image.NewRGBA(image.Rect(0, 0, cols*width, rows*height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for i, p := range panels {
		if err := chart(img, image.Pt(i%cols*width, i/cols*height), p); err != nil {
			return fmt.Errorf("%w (panel %q)", err, p.Title)
		}
	}
	return writePNG(path, img)
}

// chart draws a panel with its top left corner at o.
func chart(img *image.RGBA, o image.Point, p Panel) error {
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range p.Series {
		for i := range s.X {
			if finite(s.X[i]) && finite(s.Y[i]) {
				x0, x1 = math.Min(x0, s.X[i]), math.Max(x1, s.X[i])
				y0, y1 = math.Min(y0, s.Y[i]), math.Max(y1, s.Y[i])
			}
		}
	}
	if !finite(x0) {
		return fmt.Errorf("plot: no finite points")
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1 == y0 {
		y1 = y0 + 1
	}
	pad := (y1 - y0) * 0.05
	y0, y1 = y0-pad, y1+pad
	px := func(x float64) int { return o.X + left + int((x-x0)/(x1-x0)*float64(width-left-right)) }
	py := func(y float64) int { return o.Y + height - down - int((y-y0)/(y1-y0)*float64(height-top-down)) }
	bottom, leftX := o.Y+height-down, o.X+left
	grey := color.RGBA{120, 120, 120, 255}
	line(img, leftX, bottom, o.X+width-right, bottom, grey)
	line(img, leftX, o.Y+top, leftX, bottom, grey)
	// Whole-number x values over a short range (stages, epochs) get a tick each.
	xTicks := 5
	if whole(p.Series) && x1-x0 <= 10 {
		xTicks = int(x1 - x0)
	}
	for i := 0; i <= xTicks; i++ {
		xv := x0 + (x1-x0)*float64(i)/float64(xTicks)
		line(img, px(xv), bottom, px(xv), bottom+4, grey)
		xs := short(xv)
		if x1-x0 >= 5 || xTicks != 5 {
			xs = fmt.Sprintf("%.0f", xv)
		}
		label(img, px(xv)-len(xs)*3, bottom+17, xs)
	}
	for i := 0; i <= 5; i++ {
		yv := y0 + (y1-y0)*float64(i)/5
		line(img, leftX-4, py(yv), leftX, py(yv), grey)
		label(img, o.X+4, py(yv)+4, short(yv))
	}
	label(img, o.X+width/2-len(p.XLabel)*3, o.Y+height-6, p.XLabel)
	label(img, leftX, o.Y+18, p.Title)
	for k, s := range p.Series {
		prevX, prevY, have := 0, 0, false
		for i := range s.X {
			if !finite(s.X[i]) || !finite(s.Y[i]) {
				continue
			}
			x, y := px(s.X[i]), py(s.Y[i])
			if have {
				line(img, prevX, prevY, x, y, s.Color)
			} else if len(s.X) == 1 {
				line(img, x-2, y, x+2, y, s.Color)
			}
			prevX, prevY, have = x, y, true
		}
		lx := o.X + width - right - 160
		ly := o.Y + top + 14*k + 6
		line(img, lx, ly, lx+20, ly, s.Color)
		label(img, lx+26, ly+4, s.Name)
	}
	return nil
}

// writePNG writes img to path atomically.
func writePNG(path string, img image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plot-*.png")
	if err != nil {
		return err
	}
	err = png.Encode(tmp, img)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// whole says every finite x value of the series is a whole number.
func whole(series []Series) bool {
	for _, s := range series {
		for _, x := range s.X {
			if finite(x) && x != math.Trunc(x) {
				return false
			}
		}
	}
	return true
}

func short(v float64) string {
	switch a := math.Abs(v); {
	case a >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// line draws a 2-pixel line with Bresenham's algorithm.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		img.SetRGBA(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func label(img *image.RGBA, x, y int, s string) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{40, 40, 40, 255}), Face: basicfont.Face7x13,
		Dot: fixed.P(x, y)}
	d.DrawString(s)
}
