"""Score distillation: the losses SDS/CSD/ISM/CSM/VPCSM, their timesteps, and the 2D playground."""
