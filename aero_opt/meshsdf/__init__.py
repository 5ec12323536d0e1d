"""Layer 2, the implicit shape model: the DeepSDF decoder and its loading (:mod:`.decoder`), fitting a latent to a
mesh (:mod:`.fit`), and the training side: auto-decoder training (:mod:`.train`), fine-tuning (:mod:`.finetune`)
and the topology demo (:mod:`.topology`). Inference modules never import the training ones."""
