"""The one stand-in for the A1111 webui (v1.10.1) used by the tests: `modules` and `launch`.

Put this folder on sys.path (the `webui` fixture in harness.py does, for the tests that ask for it) and
`import modules.scripts` etc. work as in the webui. Signatures and hook order are copied from
../shared/docs/webui.md; the model is a real tiny ldm UNet and the samplers are k-diffusion's.
"""
