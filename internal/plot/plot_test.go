package plot

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestLinesWritesAPNG(t *testing.T) {
	p := filepath.Join(t.TempDir(), "curve.png")
	xs := []float64{1, 2, 3, 4, 5}
	err := Lines(p, "loss", "step", []Series{
		{Name: "train", X: xs, Y: []float64{5, 3, math.NaN(), 2, 1.5}, Color: color.RGBA{200, 30, 30, 255}},
		{Name: "held-out", X: []float64{5}, Y: []float64{1.8}, Color: color.RGBA{30, 30, 200, 255}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img := readPNG(t, p)
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("size %v", b)
	}
	// The train line passes through its first point: the pixel there is red.
	y0, y1 := 1.5-0.175, 5+0.175 // data range padded by 5 %
	frac := (5 - y0) / (y1 - y0)
	r, g, _, _ := img.At(left, height-down-int(frac*float64(height-top-down))).RGBA()
	if r>>8 < 150 || g>>8 > 100 {
		t.Fatalf("no line at the first point (r %d g %d)", r>>8, g>>8)
	}
	if err := Lines(p, "x", "y", []Series{{X: []float64{math.NaN()}, Y: []float64{1}}}); err == nil {
		t.Fatal("a chart with no finite point was drawn")
	}
}

// TestGridPlacesPanels: three panels two to a row make a 2x2 grid; each panel's line is
// drawn inside its own cell.
func TestGridPlacesPanels(t *testing.T) {
	p := filepath.Join(t.TempDir(), "grid.png")
	red := color.RGBA{200, 30, 30, 255}
	diagonal := func(y float64) []Series {
		return []Series{{Name: "a", X: []float64{0, 1}, Y: []float64{y, y + 2}, Color: red}}
	}
	if err := Grid(p, 2, []Panel{{Title: "one", Series: diagonal(1)}, {Title: "two", Series: diagonal(2)}, {Title: "three", Series: diagonal(3)}}); err != nil {
		t.Fatal(err)
	}
	img := readPNG(t, p)
	if b := img.Bounds(); b.Dx() != 2*width || b.Dy() != 2*height {
		t.Fatalf("size %v, want a 2x2 grid", b)
	}
	// Each panel's diagonal passes through the centre of its plot area.
	cx, cy := left+(width-left-right)/2, height-down-(height-top-down)/2
	red3 := func(x, y int) bool { // a red pixel within 3 of (x, y)
		for dx := -3; dx <= 3; dx++ {
			for dy := -3; dy <= 3; dy++ {
				if r, g, _, _ := img.At(x+dx, y+dy).RGBA(); r>>8 > 150 && g>>8 < 100 {
					return true
				}
			}
		}
		return false
	}
	for _, cell := range [][2]int{{0, 0}, {width, 0}, {0, height}} {
		if !red3(cell[0]+cx, cell[1]+cy) {
			t.Fatalf("no line through the centre of the panel at %v", cell)
		}
	}
	if red3(width+cx, height+cy) {
		t.Fatal("the empty fourth cell has a line")
	}
	if err := Grid(p, 2, nil); err == nil {
		t.Fatal("a grid of no panels was drawn")
	}
}

func TestTrainingCurve(t *testing.T) {
	dir := t.TempDir()
	metrics := `{"step":1,"loss":4}` + "\n" + `{"step":10,"loss":2,"eval_loss":2.5}` + "\n" + `{"step":20,"loss":1}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(metrics), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := TrainingCurve(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "curve.png")); err != nil {
		t.Fatal("no curve drawn:", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte("{\"step\":1,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := TrainingCurve(dir); err == nil {
		t.Fatal("a broken metrics.jsonl was drawn")
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
