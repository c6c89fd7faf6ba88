"""Load an adapter saved by Pioneer with Hugging Face PEFT and compare logits.

  go test ./lora -run TestWritePEFTCheck -peft-check-dir DIR
  .venv/bin/python scripts/check_peft_load.py DIR

DIR/adapter is the adapter Pioneer saved, DIR/pioneer.json the base model folder, the
input ids and Pioneer's logits. Exits non-zero when PEFT's logits differ by more than 1e-4.
"""
import json
import sys

import peft
import torch
import transformers

d = sys.argv[1]
ref = json.load(open(f"{d}/pioneer.json"))
base = transformers.AutoModelForCausalLM.from_pretrained(ref["base"], dtype=torch.float32)
model = peft.PeftModel.from_pretrained(base, f"{d}/adapter").eval()
with torch.no_grad():
    ids = torch.tensor([ref["ids"]])
    logits = model(ids).logits[0].flatten()
    with model.disable_adapter():
        plain = model(ids).logits[0].flatten()
diff = (logits - torch.tensor(ref["logits"])).abs().max().item()
effect = (logits - plain).abs().max().item()
print(f"peft {peft.__version__}: adapter on {sorted(model.peft_config['default'].target_modules)} moves logits by up to {effect:.3g}; "
      f"max |logit(PEFT) - logit(Pioneer)| = {diff:.3g}")
sys.exit(0 if diff <= 1e-4 and effect > 1e-3 else 1)
