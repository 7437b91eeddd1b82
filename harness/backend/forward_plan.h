/* What an extension method decides for one forward pass: the only thing the engine
 * and the backends learn about methods. */
#ifndef CTX_FORWARD_PLAN_H
#define CTX_FORWARD_PLAN_H

struct forward_plan {
    const float *inv_freq;   /* n_rot/2 inverse frequencies */
    float mscale;            /* multiplies cos and sin (logits get mscale^2) */
    int swa_window;          /* >0: query sees keys with 0 <= q_pos - k_pos < window */
    int se_group;            /* SelfExtend group size G, 0 = off */
    int se_window;           /* SelfExtend neighbour window W */
};

#endif
