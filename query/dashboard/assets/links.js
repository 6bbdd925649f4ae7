// The newsletter link page: copy buttons, and the destination field shown
// only for tracking links. The page works without it (select and copy).
'use strict';
(() => {
  for (const b of document.querySelectorAll('button.copy')) {
    b.addEventListener('click', async () => {
      const input = document.getElementById(b.dataset.copy);
      const status = document.querySelector('.made .status');
      try {
        await navigator.clipboard.writeText(input.value);
        status.textContent = b.dataset.done;
      } catch (e) {
        // No clipboard (plain HTTP, or refused): select it for the person.
        input.focus(); input.select();
        status.textContent = b.dataset.failed;
      }
    });
  }
  const form = document.querySelector('.linkform');
  const sync = () => {
    const pixel = form.querySelector('input[name=kind][value=pixel]').checked;
    document.body.classList.toggle('pixel', pixel);
    form.querySelector('input[name=url]').required = !pixel;
  };
  for (const r of form.querySelectorAll('input[name=kind]')) r.addEventListener('change', sync);
  sync();
})();
