"""An AlgoPerf PyTorch submission (SGD): curvebench must refuse it with a one-line error."""

import torch

from algoperf import spec


def get_batch_size(workload_name):
    return 128


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    return {"optimizer": torch.optim.SGD(model_params.parameters(), lr=hyperparameters.learning_rate)}


def update_params(workload, current_param_container, current_params_types, model_state,
                  hyperparameters, batch, loss_type, optimizer_state, eval_results, global_step,
                  rng, train_state=None):
    raise NotImplementedError


def data_selection(workload, input_queue, optimizer_state, current_param_container, model_state,
                   hyperparameters, global_step, rng):
    return next(input_queue)
