package judge

import (
	"context"
	"io"

	"github.com/pioneer-ai/pioneer/agent/finetune"
	"github.com/pioneer-ai/pioneer/agent/task"
	"github.com/pioneer-ai/pioneer/engine/torch"
	"github.com/pioneer-ai/pioneer/lora"
	"github.com/pioneer-ai/pioneer/model"
)

// Models trains and scores the models a production benchmark compares, each from one
// base model with one recipe: the deployment and the naive baselines (an adapter each,
// or with Recipe.Full a model folder each), and any of them or an agent's version
// scored.
type Models struct {
	Base     *model.Pretrained
	BaseName string // what the base was opened from, recorded in what is trained
	Device   torch.Device
	Task     *task.Task
	Recipe   finetune.Recipe
	// Val is what training's validation loss is measured on.
	Val    []task.Example
	Eval   task.EvalOptions
	Resume bool // an interrupted training continues from its checkpoint
	Log    io.Writer
}

// Train fine-tunes the base model on exs into dir: an adapter, or (Recipe.Full) a model
// folder trained from the base weights.
func (m *Models) Train(exs []task.Example, dir string) error {
	b := m.Base
	if m.Recipe.Full { // start from the base weights every time
		fresh, err := model.Load(b.Dir, m.Device, torch.Float32)
		if err != nil {
			return err
		}
		b.LM.Close()
		b.LM = fresh
	}
	env := finetune.TrainEnv{EOS: b.FirstEOS(), Pad: b.Pad, Base: m.BaseName, Out: dir, Log: m.Log, Resume: m.Resume}
	set, _, err := finetune.Train(context.Background(), b.LM, b.Tokenizer, m.Task, exs, m.Val, m.Recipe, env)
	if err != nil {
		return err
	}
	if set != nil {
		set.Close()
		return nil
	}
	return model.CopyCompanionFiles(b.Dir, dir)
}

// With runs f with what dir holds in place: its adapter attached to the base model, or
// its weights loaded.
func (m *Models) With(dir string, f func(model.CausalLM) error) error {
	if m.Recipe.Full {
		fm, err := model.Load(dir, m.Device, torch.Float32)
		if err != nil {
			return err
		}
		defer fm.Close()
		return f(fm)
	}
	set, err := lora.Load(dir, m.Base.LM)
	if err != nil {
		return err
	}
	defer set.Close()
	return f(m.Base.LM)
}

// Evaluate runs what dir holds on exs.
func (m *Models) Evaluate(dir string, exs []task.Example) (res *task.Result, err error) {
	err = m.With(dir, func(lm model.CausalLM) error {
		res, err = m.Task.Evaluate(context.Background(), lm, m.Base.Tokenizer, exs, m.Eval)
		return err
	})
	return res, err
}

// Score is the metric of what dir holds on test and the number of examples of r it
// gets wrong.
func (m *Models) Score(dir string, test, r []task.Example) (v float64, broken int, err error) {
	err = m.With(dir, func(lm model.CausalLM) error {
		v, broken, err = Score(m.Task, lm, m.Base.Tokenizer, test, r, m.Eval)
		return err
	})
	return v, broken, err
}
