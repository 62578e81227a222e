// LintSeq edit sequences as steppers: one diff shown at a time, previous/next to move.
// The page works without it (the first diff shows); nothing here reads text as HTML.
document.querySelectorAll(".stepper").forEach((stepper) => {
  const steps = stepper.querySelectorAll(".step");
  const at = stepper.querySelector(".at");
  let index = 0;
  const show = (next) => {
    index = Math.max(0, Math.min(steps.length - 1, next));
    steps.forEach((step, i) => { step.hidden = i !== index; });
    at.textContent = String(index + 1);
  };
  stepper.querySelector(".prev").addEventListener("click", () => show(index - 1));
  stepper.querySelector(".next").addEventListener("click", () => show(index + 1));
});
